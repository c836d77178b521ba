"""The two servers under test, started the way an operator would start them, each on a fresh database.

Both get the same shape of config: one plain-HTTP client listener on a free loopback port, open
registration without verification, rate limits off, presence off, logging at the same level to a file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import attrs
import requests
import yaml

from bench.process import (
    POSTGRES_SERVER,
    create_postgres_database,
    drop_postgres_database,
    free_port,
    stop_process,
    tail,
    wait_until,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_SECRET = "vignette-bench-shared-secret"
SERVER_NAME = "bench.local"
START_TIMEOUT_S = 90
# Synapse's rate limiters; each is set far above anything the workloads do.
SYNAPSE_RATE_LIMITS = (
    "rc_message", "rc_registration", "rc_joins.local", "rc_joins.remote", "rc_joins_per_room",
    "rc_invites.per_room", "rc_invites.per_user", "rc_invites.per_issuer", "rc_admin_redaction",
    "rc_3pid_validation", "rc_login.address", "rc_login.account", "rc_login.failed_attempts",
    "rc_presence.per_user", "rc_delayed_event_mgmt", "rc_reports", "rc_room_creation",
    "rc_registration_token_validity", "rc_key_requests",
)
UNLIMITED = {"per_second": 1_000_000, "burst_count": 1_000_000}
_OFF = {"enabled": False}
# Vignette's limits, each switched off (Vignette's rate limits take `enabled`).
VIGNETTE_NO_RATE_LIMITS = {
    "rc_message": _OFF, "rc_registration": _OFF,
    "rc_login": {"address": _OFF, "account": _OFF, "failed_attempts": _OFF},
    "rc_joins": {"local": _OFF, "remote": _OFF}, "rc_joins_per_room": _OFF,
    "rc_invites": {"per_room": _OFF, "per_user": _OFF, "per_issuer": _OFF},
    "rc_room_creation": _OFF, "rc_presence": {"per_user": _OFF}, "rc_key_requests": _OFF,
    "rc_3pid_validation": _OFF, "rc_media_create": _OFF, "rc_profile": _OFF, "rc_user_directory": _OFF,
    "rc_reports": _OFF, "rc_delayed_event_mgmt": _OFF, "rc_federation": _OFF,
}


def ensure_synapse(cache_dir: Path) -> Path:
    """The Python of a cached virtualenv holding matrix-synapse from PyPI (installed on first use)."""
    env_dir = cache_dir / "synapse-venv"
    python = env_dir / "bin" / "python"
    if python.exists() and _imports_synapse(python):
        return python
    print(f"installing matrix-synapse into {env_dir} (first run only)...", flush=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "matrix-synapse[postgres]"], check=True)
    if not _imports_synapse(python):
        raise RuntimeError("matrix-synapse installed but does not import")
    return python


def _imports_synapse(python: Path) -> bool:
    return subprocess.run([str(python), "-c", "import synapse, psycopg2"],
                          capture_output=True).returncode == 0


def synapse_version(python: Path) -> str:
    return subprocess.run([str(python), "-c", "import synapse; print(synapse.__version__)"],
                          capture_output=True, text=True, check=True).stdout.strip()


def vignette_version() -> str:
    """The commit Vignette runs from, marked when the work tree has uncommitted changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()
    commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


@attrs.define
class Target:
    """One server process on one database; ``kind`` is synapse or vignette, ``engine`` sqlite or postgres."""

    kind: str
    engine: str
    directory: Path
    command: list[str]
    config_path: Path
    port: int
    env: dict[str, str]
    postgres_database: str | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.engine}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "server not started"
        return self.process.pid

    def start(self) -> None:
        log = open(self.directory / "stdout.log", "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(self.command, stdout=log, stderr=log, env=self.env,
                                        cwd=str(self.directory))
        log.close()
        if not wait_until(self._answers, START_TIMEOUT_S, 0.1):
            output = self.output()
            self.stop()
            raise RuntimeError(f"{self.label} did not come up:\n{output}")

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.label} exited with {self.process.returncode}:\n{self.output()}")
        try:
            return requests.get(self.base_url + "/_matrix/client/versions", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def restart_process(self) -> None:
        """Stop and start the server on the same database."""
        if self.process is not None:
            stop_process(self.process)
        self.start()

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None
        if self.postgres_database:
            drop_postgres_database(self.postgres_database)
            self.postgres_database = None

    def output(self) -> str:
        return "\n".join(tail(self.directory / name) for name in ("stdout.log", "homeserver.log"))


def _database_for(engine: str, directory: Path) -> tuple[dict[str, Any], str | None]:
    if engine == "sqlite":
        return {"name": "sqlite3", "args": {"database": str(directory / "homeserver.db")}}, None
    name = create_postgres_database()
    return {"name": "psycopg2", "args": {**POSTGRES_SERVER, "database": name, "cp_min": 5,
                                         "cp_max": 10}}, name


def make_vignette(engine: str, directory: Path, log_level: str, extra: dict[str, Any] | None = None) -> Target:
    """A Vignette target; ``extra`` is merged into its config (an A/B of a setting)."""
    from homeserver.signing_key import write_new_signing_key

    directory.mkdir(parents=True, exist_ok=True)
    key_path = directory / "signing.key"
    write_new_signing_key(str(key_path))
    database, pg_name = _database_for(engine, directory)
    port = free_port()
    config: dict[str, Any] = {
        "server_name": SERVER_NAME,
        "pid_file": str(directory / "homeserver.pid"),
        "listeners": [{"port": port, "bind_addresses": ["127.0.0.1"], "type": "http",
                       "resources": [{"names": ["client", "health"]}]}],
        "database": database,
        "signing_key_path": str(key_path),
        "media_store_path": str(directory / "media"),
        "enable_registration": True,
        "enable_registration_without_verification": True,
        "registration_shared_secret": SHARED_SECRET,
        **VIGNETTE_NO_RATE_LIMITS,
        "presence": {"enabled": False},
        "logging": {"level": log_level, "file": str(directory / "homeserver.log")},
        **(extra or {}),
    }
    config_path = directory / "homeserver.yaml"
    config_path.write_text(yaml.safe_dump(config))
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return Target("vignette", engine, directory, [sys.executable, "-m", "homeserver", "-c", str(config_path)],
                  config_path, port, env, pg_name)


def make_synapse(engine: str, directory: Path, log_level: str, python: Path) -> Target:
    directory.mkdir(parents=True, exist_ok=True)
    key_path = directory / "signing.key"
    subprocess.run([str(python.parent / "generate_signing_key"), "-o", str(key_path)], check=True)
    log_config_path = directory / "log.yaml"
    log_config_path.write_text(yaml.safe_dump(_synapse_log_config(directory / "homeserver.log", log_level)))
    database, pg_name = _database_for(engine, directory)
    port = free_port()
    config: dict[str, Any] = {
        "server_name": SERVER_NAME,
        "report_stats": False,
        "pid_file": str(directory / "homeserver.pid"),
        "listeners": [{"port": port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": False,
                       "x_forwarded": False, "resources": [{"names": ["client"], "compress": False}]}],
        "database": database,
        "signing_key_path": str(key_path),
        "log_config": str(log_config_path),
        "media_store_path": str(directory / "media"),
        "enable_registration": True,
        "enable_registration_without_verification": True,
        "registration_shared_secret": SHARED_SECRET,
        # Setup registers hundreds of users; the bcrypt work factor only slows setup, not workloads.
        "bcrypt_rounds": 4,
        "presence": {"enabled": False},
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "enable_metrics": False,
        "url_preview_enabled": False,
        "macaroon_secret_key": "vignette-bench-macaroon",
        "form_secret": "vignette-bench-form",
    }
    for dotted in SYNAPSE_RATE_LIMITS:
        section, _, sub = dotted.partition(".")
        if sub:
            config.setdefault(section, {})[sub] = dict(UNLIMITED)
        else:
            config[section] = dict(UNLIMITED)
    config_path = directory / "homeserver.yaml"
    config_path.write_text(yaml.safe_dump(config))
    command = [str(python), "-m", "synapse.app.homeserver", "-c", str(config_path)]
    return Target("synapse", engine, directory, command, config_path, port, dict(os.environ), pg_name)


def _synapse_log_config(log_file: Path, level: str) -> dict[str, Any]:
    return {
        "version": 1,
        "formatters": {"precise": {"format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - "
                                             "%(request)s - %(message)s"}},
        "filters": {"context": {"()": "synapse.logging.context.LoggingContextFilter"}},
        "handlers": {"file": {"class": "logging.FileHandler", "formatter": "precise", "filters": ["context"],
                              "filename": str(log_file), "encoding": "utf8"}},
        "loggers": {"synapse.storage.SQL": {"level": "WARNING"}},
        "root": {"level": level, "handlers": ["file"]},
        "disable_existing_loggers": False,
    }
