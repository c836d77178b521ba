"""Worker configuration: a shared file plus a worker's own, and the refusals (one line each)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from homeserver.config import load_config
from homeserver.config import workers as kinds
from homeserver.signing_key import write_new_signing_key
from tests.support.server import server_env

POSTGRES = {
    "name": "psycopg2",
    "args": {"host": "127.0.0.1", "user": "postgres", "database": "unused"},
}
REDIS_ON = {"enabled": True, "host": "127.0.0.1", "port": 6379}
WORKER = {"worker_app": "synapse.app.generic_worker", "worker_name": "reader1"}
PERSISTER_MAP = {
    "main": {"host": "127.0.0.1", "port": 8008},
    "persister1": {"host": "127.0.0.1", "port": 8012},
}


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def shared(tmp_path: Path, **overrides: Any) -> Path:
    key_path = tmp_path / "signing.key"
    write_new_signing_key(str(key_path))
    config = {
        "server_name": "example.com",
        "signing_key_path": str(key_path),
        "listeners": [{"port": 8008, "resources": [{"names": ["client"]}]}],
        "database": POSTGRES,
        "redis": REDIS_ON,
        "instance_map": {"main": {"host": "127.0.0.1", "port": 8008}},
        **overrides,
    }
    return write(tmp_path / "homeserver.yaml", config)


def check(*paths: Path) -> subprocess.CompletedProcess[str]:
    args = [arg for path in paths for arg in ("-c", str(path))]
    return subprocess.run(
        [sys.executable, "-m", "homeserver", *args, "--check-config"],
        capture_output=True,
        text=True,
        timeout=60,
        env=server_env(),
    )


def test_a_worker_reads_the_shared_file_and_its_own(tmp_path: Path) -> None:
    worker = write(tmp_path / "worker.yaml", {**WORKER, "listeners": [{"port": 8010}]})
    result = check(shared(tmp_path), worker)
    assert result.returncode == 0, result.stderr
    assert "the config is valid" in result.stdout


@pytest.mark.parametrize(
    ("overrides", "worker", "message"),
    [
        (
            {"database": {"name": "sqlite3", "args": {"database": "x.db"}}},
            WORKER,
            "database.name: workers need PostgreSQL: SQLite cannot be shared between processes",
        ),
        ({"redis": {"enabled": False}}, WORKER, "redis.enabled: workers replicate over Redis"),
        ({"instance_map": {}}, WORKER, "instance_map: a worker needs the 'main' process's address"),
        (
            {},
            {"worker_app": "synapse.app.generic_worker"},
            "worker_name: a worker needs a name of its own",
        ),
        ({}, {"worker_app": "synapse.app.pusher"}, "worker_app: expected one of"),
        (
            {"stream_writers": {"receipts": ["writer1"]}},
            WORKER,
            "stream_writers: receipts: only the main process writes streams in this version",
        ),
        (
            {"stream_writers": {"typing": ["main", "writer1"]}},
            WORKER,
            "stream_writers: typing: expected exactly one writer instance",
        ),
        (
            {"stream_writers": {"events": ["persister1", "persister1"]}},
            WORKER,
            "stream_writers: events: expected one or more distinct instance names",
        ),
        (
            {"stream_writers": {"events": ["persister1", "persister2"]}, "worker_replication_secret": "s"},
            WORKER,
            "stream_writers.events: the event persister 'persister1' needs its address in instance_map",
        ),
        (
            {"stream_writers": {"events": ["main"]}, "instance_map": {**PERSISTER_MAP}},
            WORKER,
            "",  # events on main alone: no persisters, nothing more to set
        ),
        (
            {"stream_writers": {"events": ["persister1"]}, "instance_map": {**PERSISTER_MAP}},
            WORKER,
            "worker_replication_secret: event persisters need a shared worker_replication_secret",
        ),
        (
            {
                "database": {"name": "sqlite3", "args": {"database": "x.db"}},
                "stream_writers": {"events": ["persister1"]},
                "instance_map": {**PERSISTER_MAP},
                "worker_replication_secret": "s",
            },
            WORKER,
            "database.name: workers need PostgreSQL",
        ),
        ({"stream_writers": {"rooms": ["main"]}}, WORKER, "stream_writers: expected stream names"),
        (
            {"federation_sender_instances": ["sender1", "sender2"]},
            WORKER,
            "federation_sender_instances: expected exactly one instance",
        ),
        (
            {"run_background_tasks_on": "background1"},
            WORKER,
            "worker_replication_secret: the background-jobs worker sends delayed events",
        ),
    ],
)
def test_refusals_name_the_key_and_the_reason(
    tmp_path: Path, overrides: dict[str, Any], worker: dict[str, Any], message: str
) -> None:
    result = check(shared(tmp_path, **overrides), write(tmp_path / "worker.yaml", worker))
    if not message:
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_sqlite_main_process_with_workers_in_the_map_refuses_to_start(tmp_path: Path) -> None:
    config = shared(
        tmp_path,
        database={"name": "sqlite3", "args": {"database": str(tmp_path / "x.db")}},
        instance_map={
            "main": {"host": "127.0.0.1", "port": 8008},
            "reader1": {"host": "127.0.0.1", "port": 8010},
        },
    )
    result = subprocess.run(
        [sys.executable, "-m", "homeserver", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=server_env(),
    )
    assert result.returncode == 1
    assert "workers need PostgreSQL" in result.stderr.strip().splitlines()[-1]


ROLES = ("sends_federation", "serves_media", "runs_background_tasks", "runs_media_jobs")


@pytest.mark.parametrize(
    ("shared_keys", "worker", "main_roles", "worker_roles"),
    [
        # One process does everything (the default).
        ({}, WORKER, set(ROLES), set()),
        (
            {"federation_sender_instances": ["reader1"]},
            WORKER,
            {"serves_media", "runs_background_tasks", "runs_media_jobs"},
            {"sends_federation"},
        ),
        # Synapse's older form of the same.
        (
            {"send_federation": False},
            {**WORKER, "worker_app": "synapse.app.federation_sender"},
            {"serves_media", "runs_background_tasks", "runs_media_jobs"},
            {"sends_federation"},
        ),
        ({"send_federation": False}, WORKER, {"serves_media", "runs_background_tasks", "runs_media_jobs"}, set()),
        (
            {"enable_media_repo": False, "media_instance_running_background_jobs": "reader1"},
            {**WORKER, "enable_media_repo": True},
            {"sends_federation", "runs_background_tasks"},
            {"serves_media", "runs_media_jobs"},
        ),
        (
            {"enable_media_repo": False},
            {**WORKER, "worker_app": "synapse.app.media_repository"},
            {"sends_federation", "runs_background_tasks", "runs_media_jobs"},
            {"serves_media"},
        ),
        (
            {"run_background_tasks_on": "reader1", "worker_replication_secret": "s"},
            WORKER,
            {"sends_federation", "serves_media"},
            {"runs_background_tasks", "runs_media_jobs"},
        ),
    ],
)
def test_which_process_does_what(
    tmp_path: Path,
    shared_keys: dict[str, Any],
    worker: dict[str, Any],
    main_roles: set[str],
    worker_roles: set[str],
) -> None:
    shared_path = shared(tmp_path, **shared_keys)
    worker_path = write(tmp_path / "worker.yaml", worker)
    for paths, expected in (([str(shared_path)], main_roles), ([str(shared_path), str(worker_path)], worker_roles)):
        config = load_config(paths)
        assert {role for role in ROLES if getattr(kinds, role)(config)} == expected, paths
