"""vignette-port-db: a populated SQLite server's database ported to PostgreSQL (stopped once
and resumed), then the server started on PostgreSQL answers exactly as before."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import yaml

from tests.support.accounts import PASSWORD, password_login
from tests.support.admin import ADMIN_V1, ADMIN_V2, new_admin
from tests.support.client import Client, q, register_user
from tests.support.databases import POSTGRES_SERVER, drop_database, fresh_database_config
from tests.support.e2ee import claim, setup_device
from tests.support.media import download, upload
from tests.support.rooms import create_room, invite, join, send_message
from tests.support.server import (
    REPO_ROOT,
    RunningServer,
    custom_server,
    server_env,
)

V3 = "/_matrix/client/v3"
pytestmark = pytest.mark.postgres


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[RunningServer]:
    with custom_server(tmp_path / "hs", "sqlite3") as running:
        yield running


@pytest.fixture
def postgres_database(tmp_path: Path) -> Iterator[dict[str, Any]]:
    config = fresh_database_config("psycopg2", tmp_path)
    yield config
    drop_database(config)


def populate(server: RunningServer) -> dict[str, Any]:
    """Users, devices and keys, rooms with history and state, media, tokens, account data."""
    alice = register_user(server.base_url, device_id="ALICEPHONE")
    bob = register_user(server.base_url, device_id="BOBLAPTOP")
    admin = new_admin(server)
    setup_device(alice, otk_count=3)
    setup_device(bob, otk_count=2)
    room_id = create_room(alice, name="Ported", topic="Across engines", room_alias_name="ported")
    invite(alice, room_id, bob.user_id)
    join(bob, room_id)
    for i in range(150):
        send_message(alice if i % 2 else bob, room_id, f"message {i}")
    private = create_room(bob, preset="private_chat")
    send_message(bob, private, "just me")
    assert alice.put(f"{V3}/user/{q(alice.user_id)}/account_data/m.test", {"kept": True}).status == 200
    assert alice.post(f"{V3}/rooms/{q(room_id)}/receipt/m.read/{q(send_message(bob, room_id, 'read me'))}",
                      {}).status == 200
    assert admin.post(f"{ADMIN_V1}/registration_tokens/new", {"token": "portedtoken", "uses_allowed": 3}).status == 200
    media = upload(alice, b"the bytes of a ported file", "text/plain")
    return {"alice": alice, "bob": bob, "admin": admin, "rooms": [room_id, private], "media": media}


def without_age(value: Any) -> Any:
    """``unsigned.age`` and a device's ``last_seen_ts`` move with the clock and use;
    everything else must be identical."""
    if isinstance(value, dict):
        return {k: without_age(v) for k, v in value.items() if k not in ("age", "last_seen_ts")}
    if isinstance(value, list):
        return [without_age(v) for v in value]
    return value


def snapshot(server: RunningServer, world: dict[str, Any]) -> dict[str, Any]:
    """What clients see: each user's full /sync (presence aside: it ages), history, keys..."""
    seen: dict[str, Any] = {}
    for name in ("alice", "bob"):
        client: Client = world[name]
        sync = client.get(f"{V3}/sync").body
        sync.pop("presence", None)
        seen[f"{name} sync"] = sync
        seen[f"{name} devices"] = client.get(f"{V3}/devices").body
        seen[f"{name} joined"] = client.get(f"{V3}/joined_rooms").body
    alice: Client = world["alice"]
    for room_id in world["rooms"][:1]:
        seen[f"messages {room_id}"] = alice.get(f"{V3}/rooms/{q(room_id)}/messages",
                                                params={"dir": "b", "limit": 500}).body
    seen["keys"] = alice.post(f"{V3}/keys/query", {"device_keys": {world["bob"].user_id: []}}).body
    seen["alias"] = alice.get(f"{V3}/directory/room/{q('#ported:' + server.server_name)}").body
    seen["tokens"] = world["admin"].get(f"{ADMIN_V1}/registration_tokens").body
    seen["users"] = world["admin"].get(f"{ADMIN_V2}/users").body
    seen["media"] = download(alice, *world["media"]).content
    return without_age(seen)


def differences(old: Any, new: Any, path: str = "") -> list[str]:
    """Where two JSON values differ (for a readable failure)."""
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new)):
            found += differences(old.get(key), new.get(key), f"{path}/{key}")
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new, strict=True)) for d in differences(a, b, f"{path}[{i}]")]
    return [] if old == new else [f"{path}: {old!r} != {new!r}"[:300]]


def port_tool(sqlite_path: str, config_path: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "homeserver.cli.port_db", "--sqlite-database", sqlite_path,
         "--postgres-config", str(config_path), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=server_env(), cwd=str(REPO_ROOT))


def bookmarks(database: dict[str, Any]) -> list[tuple[str, int]]:
    conn = psycopg2.connect(**POSTGRES_SERVER, dbname=database["args"]["database"])
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT to_regclass('port_db_progress')")
            if cursor.fetchone()[0] is None:
                return []
            cursor.execute("SELECT table_name, done FROM port_db_progress")
            return list(cursor.fetchall())
    finally:
        conn.close()


def test_port_sqlite_to_postgres_and_serve(sqlite_server: RunningServer, postgres_database: dict[str, Any],
                                           tmp_path: Path) -> None:
    world = populate(sqlite_server)
    before = snapshot(sqlite_server, world)
    sqlite_server.stop()
    sqlite_path = sqlite_server.config["database"]["args"]["database"]
    target_config = tmp_path / "postgres.yaml"
    target_config.write_text(yaml.safe_dump({"database": postgres_database}))

    # A first run, one row per transaction, stopped part-way through...
    first = port_tool(sqlite_path, target_config, "--batch-size", "1", "--progress", "log")
    deadline = time.monotonic() + 120
    while not any(done for _, done in bookmarks(postgres_database)):
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    first.kill()
    first_log = first.communicate()[1]
    assert "applying migration 0010_accounts (1 of " in first_log and "schema up to date" in first_log
    partial = bookmarks(postgres_database)
    assert any(done for _, done in partial) and len(partial) < 40

    # ... then resumed to the end, with log lines for its progress.
    second = port_tool(sqlite_path, target_config, "--progress", "log")
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    assert "resuming an earlier port" in err and "porting:" in err and "finished" in err
    assert "events: " in out and "done" in out
    assert all(done for _, done in bookmarks(postgres_database))

    # Again: nothing to do, nothing duplicated.
    third = port_tool(sqlite_path, target_config, "--progress", "log")
    assert third.communicate(timeout=120) and third.returncode == 0

    config = sqlite_server.config
    config["database"] = postgres_database
    sqlite_server.config_path.write_text(yaml.safe_dump(config))
    sqlite_server.start()
    after = snapshot(sqlite_server, world)
    for key in before:
        assert after[key] == before[key], (key, differences(before[key], after[key]))
    # Passwords, one-time keys and the room still work.
    assert password_login(sqlite_server.base_url, world["alice"].user_id, PASSWORD).status == 200
    assert len(claim(world["alice"], world["bob"].user_id, "BOBLAPTOP")) == 1
    send_message(world["bob"], world["rooms"][0], "after the move")
    new_events = world["alice"].get(f"{V3}/sync", params={"since": before["alice sync"]["next_batch"]}).body
    timeline = new_events["rooms"]["join"][world["rooms"][0]]["timeline"]["events"]
    assert [e["content"]["body"] for e in timeline] == ["after the move"]


def test_refusals(sqlite_server: RunningServer, postgres_database: dict[str, Any], tmp_path: Path) -> None:
    register_user(sqlite_server.base_url)
    sqlite_server.stop()
    sqlite_path = sqlite_server.config["database"]["args"]["database"]
    not_postgres = tmp_path / "sqlite.yaml"
    not_postgres.write_text(yaml.safe_dump({"database": {"name": "sqlite3", "args": {"database": "x"}}}))
    wrong = port_tool(sqlite_path, not_postgres)
    assert wrong.communicate(timeout=60)[1].strip().endswith("must have name: psycopg2") and wrong.returncode == 1
    target_config = tmp_path / "postgres.yaml"
    target_config.write_text(yaml.safe_dump({"database": postgres_database}))
    missing = port_tool(str(tmp_path / "nothing.db"), target_config)
    assert "vignette-port-db:" in missing.communicate(timeout=60)[1] and missing.returncode == 1
    # A target that already holds a server's data is refused.
    conn = psycopg2.connect(**POSTGRES_SERVER, dbname=postgres_database["args"]["database"])
    conn.autocommit = True
    done = port_tool(sqlite_path, target_config)
    assert done.communicate(timeout=120) and done.returncode == 0
    with conn.cursor() as cursor:
        cursor.execute("DROP TABLE port_db_progress")
    conn.close()
    again = port_tool(sqlite_path, target_config)
    assert "already holds data" in again.communicate(timeout=60)[1] and again.returncode == 1
