"""A main process and its workers as real processes on PostgreSQL and Redis (docs/workers.md).

The layout is an operator's: one shared homeserver.yaml (database, Redis, instance_map) and
a small file per worker (worker_app, worker_name, its listener, pid and log files), each
worker started with ``-c shared.yaml -c worker.yaml``.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import yaml

from tests.support.client import Client
from tests.support.databases import drop_database, fresh_database_config
from tests.support.server import (
    RunningServer,
    free_port,
    log_tails,
    server_env,
    spawn_until_up,
    stop_process,
    write_config,
)

REDIS = ("127.0.0.1", 6379)


def redis_available() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=1):
            return True
    except OSError:
        return False


def require_redis() -> None:
    if not redis_available():
        pytest.skip("Redis is not running at 127.0.0.1:6379 (.ci/run starts it)")


def redis_command(*args: str) -> Any:
    """One command to the test Redis, over its plain protocol (no client library needed)."""
    payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    with socket.create_connection(REDIS, timeout=5) as sock:
        sock.sendall(payload.encode())
        reader = sock.makefile("rb")
        return _read_reply(reader)


def _read_reply(reader: Any) -> Any:
    line = reader.readline().rstrip(b"\r\n")
    kind, rest = line[:1], line[1:]
    if kind in (b"+", b"-"):
        return rest.decode()
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else reader.read(size + 2)[:-2].decode()
    if kind == b"*":
        return [_read_reply(reader) for _ in range(int(rest))]
    raise ValueError(f"unexpected Redis reply {line!r}")


def redis_connections(server_name: str) -> dict[str, str]:
    """Client id -> name of every Redis connection of one test server's processes."""
    found = {}
    for line in str(redis_command("CLIENT", "LIST")).splitlines():
        fields = dict(item.split("=", 1) for item in line.split(" ") if "=" in item)
        if fields.get("name", "").startswith(f"vignette/{server_name}/"):
            found[fields["id"]] = fields["name"]
    return found


def wait_for_redis_connections(server_name: str, count: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while len(redis_connections(server_name)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the processes did not reconnect to Redis: {redis_connections(server_name)}"
            )
        time.sleep(0.1)


def drop_redis_connections(server_name: str) -> int:
    """Cut every Redis connection of one test server's processes (as a Redis restart does),
    and forget the positions they recorded; returns how many connections were cut."""
    redis_command("DEL", f"vignette/{server_name}/positions")
    found = redis_connections(server_name)
    for client_id in found:
        redis_command("CLIENT", "KILL", "ID", client_id)
    return len(found)


@attrs.define
class WorkerProcess:
    """One worker: the shared config plus its own file."""

    name: str
    directory: Path
    shared_config: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.directory / "worker.yaml"

    def start(self) -> None:
        argv = [sys.executable, "-m", "homeserver", "-c", str(self.shared_config), "-c", str(self.config_path)]
        self.process = spawn_until_up(
            argv, self.directory, self.base_url + "/health", "stderr.log", self.output, env=server_env()
        )

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def kill(self) -> None:
        """``kill -9``: no shutdown of any kind."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def output(self) -> str:
        return log_tails(self.directory, ("stderr.log", "homeserver.log"))


@attrs.define
class ProcessSet:
    main: RunningServer
    workers: dict[str, WorkerProcess]
    database: dict[str, Any]
    server_name: str

    def stop(self) -> None:
        for worker in self.workers.values():
            worker.stop()
        self.main.stop()


def write_worker(
    directory: Path,
    shared_config: Path,
    name: str,
    *,
    resources: list[str] | None = None,
    port: int | None = None,
    **extra: Any,
) -> WorkerProcess:
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    config = {
        "worker_app": "synapse.app.generic_worker",
        "worker_name": name,
        "listeners": [
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "resources": [{"names": resources or ["client", "health"]}],
            }
        ],
        "pid_file": str(directory / "worker.pid"),
        "logging": {"level": "INFO", "file": str(directory / "homeserver.log")},
        **extra,
    }
    worker = WorkerProcess(name, directory, shared_config, port)
    worker.config_path.write_text(yaml.safe_dump(config))
    return worker


def started(processes: ProcessSet) -> ProcessSet:
    """``processes`` with main and then every worker started; on a failure, all stopped and the
    database dropped."""
    try:
        processes.main.start()
        for worker in processes.workers.values():
            worker.start()
    except Exception:
        processes.stop()
        drop_database(processes.database)
        raise
    return processes


def serve(processes: ProcessSet) -> Iterator[ProcessSet]:
    """A module fixture's body (``yield from serve(start_...(...))``): the started set until
    the module is done, then every process stopped and the database dropped."""
    try:
        yield processes
    finally:
        processes.stop()
        drop_database(processes.database)


def on(client: Client, base_url: str) -> Client:
    """The same user and device, talking to another process of the set."""
    return Client(base_url, client.access_token, client.user_id, client.device_id)


def start_process_set(directory: Path, worker_names: list[str], **shared: Any) -> ProcessSet:
    """The main process and one client-reader worker per name, all started."""
    processes = write_process_set(directory, worker_names, **shared)
    return started(processes)


def start_persister_set(
    directory: Path, persisters: list[str], readers: list[str], **shared: Any
) -> ProcessSet:
    """Main, event persisters (``stream_writers.events``, rooms sharded over them) and client
    readers, all started; every worker is in ``instance_map``."""
    ports = {name: free_port() for name in persisters}
    processes = write_process_set(
        directory,
        readers,
        persister_ports=ports,
        stream_writers={"events": persisters},
        worker_replication_secret=secrets.token_hex(16),
        **shared,
    )
    return started(processes)


def write_process_set(
    directory: Path,
    worker_names: list[str],
    persister_ports: dict[str, int] | None = None,
    *,
    server_name: str | None = None,
    main_resources: list[str] | None = None,
    **shared: Any,
) -> ProcessSet:
    """The config files (and a fresh database) of a main process and its workers, not started."""
    require_redis()
    database = fresh_database_config("psycopg2", directory)
    # Each set gets its own server name, and so its own replication channel in the shared Redis.
    server_name = server_name or f"w{secrets.token_hex(4)}.test"
    main_port = free_port()
    listeners = [
        {
            "port": main_port,
            "bind_addresses": ["127.0.0.1"],
            "type": "http",
            "resources": [{"names": main_resources or ["client", "health"]}],
        }
    ]
    config_path = write_config(
        directory / "main",
        database,
        server_name=server_name,
        listeners=listeners,
        redis={"enabled": True, "host": REDIS[0], "port": REDIS[1]},
        instance_map={
            "main": {"host": "127.0.0.1", "port": main_port},
            **{name: {"host": "127.0.0.1", "port": port} for name, port in (persister_ports or {}).items()},
        },
        **shared,
    )
    main = RunningServer(
        config_path=config_path, directory=directory / "main", server_name=server_name
    )
    workers = {
        name: write_worker(directory / name, config_path, name, port=port)
        for name, port in (persister_ports or {}).items()
    }
    workers.update({name: write_worker(directory / name, config_path, name) for name in worker_names})
    return ProcessSet(main, workers, database, server_name)
