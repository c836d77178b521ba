"""Run a real Vignette process for black-box tests, the way an operator would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


def spawn_until_up(argv: list[str], directory: Path, up_url: str, log_name: str, output: Callable[[], str], *,
                   env: dict[str, str] | None = None, timeout_s: float = START_TIMEOUT_S,
                   poll_s: float = 0.05) -> subprocess.Popen[bytes]:
    """Start a server process (its output to ``directory/log_name``) and wait until ``up_url``
    answers 200; raises with ``output()`` if it exits or does not come up (then it is stopped).
    The one start-up loop of every test server: Vignette, its workers and Synapse."""
    log = open(directory / log_name, "ab")  # noqa: SIM115 - the child owns it
    process = subprocess.Popen(argv, stdout=log, stderr=log, env=env, cwd=str(directory))
    log.close()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{argv[2]} exited with {process.returncode}:\n{output()}")
        try:
            if requests.get(up_url, timeout=2).status_code == 200:
                return process
        except requests.RequestException:
            pass
        time.sleep(poll_s)
    stop_process(process)
    raise RuntimeError(f"{argv[2]} did not come up:\n{output()}")


def stop_process(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL after 20 s."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def log_tails(directory: Path, names: tuple[str, ...], limit: int = 5000) -> str:
    """The end of each log file that exists, for a failure message."""
    parts = []
    for name in names:
        path = directory / name
        if path.exists():
            parts.append(path.read_text(errors="replace")[-limit:])
    return "\n".join(parts)


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
        self.process = spawn_until_up([sys.executable, "-m", "homeserver", "-c", str(self.config_path)],
                                      self.directory, self.base_url + "/health", "stderr.log", self.output,
                                      env=server_env())

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def output(self) -> str:
        return log_tails(self.directory, ("stderr.log", "homeserver.log"))

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


@contextmanager
def custom_server(directory: Path, engine: str, **overrides: Any) -> Iterator[RunningServer]:
    """A server with config overrides (e.g. rate limits on) for the duration of a block (a fixture's
    body: ``with custom_server(...) as running: yield running``), its database dropped afterwards."""
    running, database = start_test_server(directory, engine, **overrides)
    try:
        yield running
    finally:
        running.stop()
        drop_database(database)
