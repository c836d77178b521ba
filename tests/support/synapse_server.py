"""A real Synapse homeserver (matrix-synapse from PyPI) on loopback, for federation tests.

``SynapseServer.start(directory, ca)`` writes a Synapse config and starts
``python -m synapse.app.homeserver`` from the cached test venv (tests/support/synapse_tool.py
installs it on first use):

- server name ``localhost:<federation port>``, so other servers reach it through /etc/hosts
  with no well-known or SRV lookup (Synapse has no setting for a DNS server of ours);
- a plain-HTTP client listener and a TLS federation listener (``federation`` and ``keys``), both
  on 127.0.0.1 at free ports, with a certificate from the test CA for ``localhost`` and 127.0.0.1;
- ``federation_custom_ca_list`` is the test CA with ``federation_verify_certificates: true``: it
  checks our certificates for real, and trusts nothing else;
- ``ip_range_whitelist`` opens loopback (Synapse blocks it by default), ``trusted_key_servers`` is
  empty (it must fetch keys from the servers themselves), SQLite, open registration, no rate limits.

Give other servers' names in ``peers`` only for documentation; nothing else is needed for Synapse
to reach a ``localhost:<port>`` server.  ``stop()`` terminates it (then kills it after 20 s).
The log is ``homeserver.log`` in the directory; ``output()`` returns its tail for failures.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import attrs
import requests
import yaml

from tests.support.server import free_port, log_tails, spawn_until_up, stop_process
from tests.support.synapse_tool import synapse_python
from tests.support.tls_ca import TestCA

START_TIMEOUT_S = 120
SHARED_SECRET = "vignette-test-synapse-secret"
UNLIMITED = {"per_second": 1_000_000, "burst_count": 1_000_000}
RATE_LIMITS = ("rc_message", "rc_registration", "rc_joins", "rc_invites", "rc_login", "rc_federation",
               "rc_key_requests", "rc_3pid_validation", "rc_admin_redaction", "rc_room_creation")


def _log_config(log_file: Path) -> dict[str, Any]:
    return {
        "version": 1,
        "formatters": {"precise": {"format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - "
                                             "%(request)s - %(message)s"}},
        "filters": {"context": {"()": "synapse.logging.context.LoggingContextFilter"}},
        "handlers": {"file": {"class": "logging.FileHandler", "formatter": "precise", "filters": ["context"],
                              "filename": str(log_file), "encoding": "utf8"}},
        "loggers": {"synapse.storage.SQL": {"level": "WARNING"}},
        "root": {"level": "INFO", "handlers": ["file"]},
        "disable_existing_loggers": False,
    }


def _rate_limits() -> dict[str, Any]:
    limits: dict[str, Any] = {}
    for name in RATE_LIMITS:
        if name == "rc_joins":
            limits[name] = {"local": UNLIMITED, "remote": UNLIMITED}
        elif name == "rc_invites":
            limits[name] = {"per_room": UNLIMITED, "per_user": UNLIMITED, "per_issuer": UNLIMITED}
        elif name == "rc_login":
            limits[name] = {"address": UNLIMITED, "account": UNLIMITED, "failed_attempts": UNLIMITED}
        elif name == "rc_federation":
            limits[name] = {"window_size": 1000, "sleep_limit": 1000, "sleep_delay": 1, "reject_limit": 1000,
                            "concurrent": 100}
        else:
            limits[name] = dict(UNLIMITED)
    return limits


@attrs.define
class SynapseServer:
    directory: Path
    server_name: str
    client_port: int
    federation_port: int
    ca_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def federation_url(self) -> str:
        return f"https://127.0.0.1:{self.federation_port}"

    @classmethod
    def start(cls, directory: Path, ca: TestCA, *, name_port: int | None = None, **overrides: Any) -> SynapseServer:
        """Write the config (``overrides`` replace top-level keys) and start the process.
        ``name_port`` names it ``localhost:<name_port>`` (a relay there: tests/support/partition.py)."""
        python = synapse_python()
        directory.mkdir(parents=True, exist_ok=True)
        client_port, federation_port = free_port(), free_port()
        server_name = f"localhost:{name_port or federation_port}"
        key_path = directory / "signing.key"
        subprocess.run([str(python.parent / "generate_signing_key"), "-o", str(key_path)], check=True)
        cert, key = ca.issue(["localhost"], ["127.0.0.1"])
        log_config = directory / "log.yaml"
        log_config.write_text(yaml.safe_dump(_log_config(directory / "homeserver.log")))
        config: dict[str, Any] = {
            "server_name": server_name,
            "report_stats": False,
            "pid_file": str(directory / "homeserver.pid"),
            "listeners": [
                {"port": client_port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": False,
                 "x_forwarded": False, "resources": [{"names": ["client"], "compress": False}]},
                {"port": federation_port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": True,
                 "resources": [{"names": ["federation", "keys"], "compress": False}]},
            ],
            "tls_certificate_path": str(cert),
            "tls_private_key_path": str(key),
            "federation_verify_certificates": True,
            "federation_custom_ca_list": [str(ca.ca_path)],
            "ip_range_whitelist": ["127.0.0.0/8", "::1/128"],
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "database": {"name": "sqlite3", "args": {"database": str(directory / "homeserver.db")}},
            "signing_key_path": str(key_path),
            "log_config": str(log_config),
            "media_store_path": str(directory / "media"),
            "enable_registration": True,
            "enable_registration_without_verification": True,
            "registration_shared_secret": SHARED_SECRET,
            "bcrypt_rounds": 4,
            "presence": {"enabled": False},
            "enable_metrics": False,
            "url_preview_enabled": False,
            "macaroon_secret_key": "vignette-test-macaroon",
            "form_secret": "vignette-test-form",
            **_rate_limits(),
        }
        config.update(overrides)
        config_path = directory / "homeserver.yaml"
        config_path.write_text(yaml.safe_dump(config))
        server = cls(directory, server_name, client_port, federation_port, ca.ca_path)
        server.process = spawn_until_up(
            [str(python), "-m", "synapse.app.homeserver", "-c", str(config_path)], directory,
            server.base_url + "/_matrix/client/versions", "stdout.log", server.output,
            timeout_s=START_TIMEOUT_S, poll_s=0.2)
        return server

    def verify_keys(self) -> dict[str, str]:
        """Key ID -> unpadded base64 public key, as Synapse publishes them."""
        response = requests.get(self.federation_url + "/_matrix/key/v2/server", verify=str(self.ca_path),
                                timeout=30)
        return {key_id: entry["key"] for key_id, entry in response.json()["verify_keys"].items()}

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def output(self) -> str:
        return log_tails(self.directory, ("stdout.log", "homeserver.log"), 6000)
