"""Run a real Vignette process for black-box tests, the way an operator would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import requests
import yaml

from homeserver.signing_key import write_new_signing_key
from tests.support.databases import drop_database, fresh_database_config

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


OFF = {"enabled": False}
#: Every rate limit switched off; tests that exercise a limit turn it back on.
NO_RATE_LIMITS: dict[str, Any] = {
    "rc_message": OFF,
    "rc_registration": OFF,
    "rc_login": {"address": OFF, "account": OFF, "failed_attempts": OFF},
    "rc_joins": {"local": OFF, "remote": OFF},
    "rc_joins_per_room": OFF,
    "rc_invites": {"per_room": OFF, "per_user": OFF, "per_issuer": OFF},
    "rc_room_creation": OFF,
    "rc_presence": {"per_user": OFF},
    "rc_key_requests": OFF,
    "rc_3pid_validation": OFF,
    "rc_media_create": OFF,
    "rc_profile": OFF,
    "rc_user_directory": OFF,
    "rc_reports": OFF,
    "rc_delayed_event_mgmt": OFF,
    "rc_federation": OFF,
}


def write_config(directory: Path, database: dict[str, Any], server_name: str = "test.local",
                 **overrides: Any) -> Path:
    """A config for a test server: plain-HTTP client listener on a free port, no rate limits,
    and anyone may publish rooms to the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    key_path = directory / "signing.key"
    write_new_signing_key(str(key_path))
    config: dict[str, Any] = {
        "server_name": server_name,
        "pid_file": str(directory / "homeserver.pid"),
        "listeners": [{"port": free_port(), "bind_addresses": ["127.0.0.1"], "type": "http",
                       "resources": [{"names": ["client", "health"]}]}],
        "database": database,
        "signing_key_path": str(key_path),
        "media_store_path": str(directory / "media"),
        "enable_registration": True,
        "enable_registration_without_verification": True,
        "registration_shared_secret": "test-shared-secret",
        # The cheapest bcrypt cost: tests register hundreds of users.
        "bcrypt_rounds": 4,
        **NO_RATE_LIMITS,
        "room_list_publication_rules": [{"action": "allow"}],
        "logging": {"level": "INFO", "file": str(directory / "homeserver.log")},
        # Test servers never ask the machine's resolver: nothing answers on this loopback port, so
        # lookups of names outside the tests fail (federation tests point this at their own DNS).
        "outbound_dns_servers": ["127.0.0.1:9"],
    }
    config.update(overrides)
    path = directory / "homeserver.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@attrs.define
class RunningServer:
    config_path: Path
    directory: Path
    server_name: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> dict[str, Any]:
        return yaml.safe_load(self.config_path.read_text())

    @property
    def base_url(self) -> str:
        port = self.config["listeners"][0]["port"]
        return f"http://127.0.0.1:{port}"

    def start(self) -> None:
        log = open(self.directory / "stderr.log", "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "homeserver", "-c", str(self.config_path)],
            stdout=log, stderr=log, env=server_env(), cwd=str(self.directory),
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.output()}")
            try:
                if requests.get(self.base_url + "/health", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not come up:\n{self.output()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def output(self) -> str:
        parts = []
        for name in ("stderr.log", "homeserver.log"):
            path = self.directory / name
            if path.exists():
                parts.append(path.read_text(errors="replace")[-5000:])
        return "\n".join(parts)

    def url(self, path: str) -> str:
        return self.base_url + path


def start_test_server(directory: Path, engine: str, **overrides: Any) -> tuple[RunningServer, dict[str, Any]]:
    database = fresh_database_config(engine, directory)
    server_name = overrides.pop("server_name", "test.local")
    config_path = write_config(directory, database, server_name=server_name, **overrides)
    server = RunningServer(config_path=config_path, directory=directory, server_name=server_name)
    try:
        server.start()
    except Exception:
        drop_database(database)
        raise
    return server, database
