"""Migration 0030 (the room DAG) on a database written by the code before it.

A linear room as the old room queue stored it must come out as a DAG: its head the one
forward extremity, its edges read back from the stored event JSON (both reference
shapes), its state changes indexed by stream position, and outliers storable.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest_twisted

from storage.engine import Database, Transaction
from storage.migrate import default_migrations_dir, prepare_database

ROOM = "!old:test.local"


def _before_0030(tmp_path: Path) -> Path:
    target = tmp_path / "old-migrations"
    target.mkdir()
    source = default_migrations_dir()
    for entry in source.iterdir():
        if entry.name.endswith(".sql") and int(entry.name[:4]) < 30:
            shutil.copyfile(str(entry), target / entry.name)
    return target


def _old_rows(txn: Transaction) -> None:
    txn.execute("INSERT INTO rooms (room_id, room_version, creator, is_public, created_ts)"
                " VALUES (?, '10', '@a:test.local', 0, 0)", (ROOM,))
    events = [
        # (stream, id, type, state_key, group, prev refs, auth refs)
        (1, "$create", "m.room.create", "", 1, [], []),
        (2, "$join", "m.room.member", "@a:test.local", 2, ["$create"], ["$create"]),
        # v1/v2 rooms quote [id, {hashes}]; the migration reads both shapes.
        (3, "$msg", "m.room.message", None, 2, [["$join", {"sha256": "x"}]], [["$create", {}], ["$join", {}]]),
    ]
    for stream, event_id, event_type, state_key, group, prevs, auths in events:
        pdu = {"type": event_type, "prev_events": prevs, "auth_events": auths, "room_id": ROOM}
        txn.execute(
            "INSERT INTO events (stream_ordering, event_id, room_id, type, state_key, sender, depth,"
            " origin_server_ts, received_ts, state_group, json) VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?)",
            (stream, event_id, ROOM, event_type, state_key, "@a:test.local", stream, group, json.dumps(pdu)))
    txn.execute("INSERT INTO room_heads (room_id, event_id, depth, state_group) VALUES (?, '$msg', 3, 2)",
                (ROOM,))


def _read(txn: Transaction) -> dict[str, object]:
    found: dict[str, object] = {}
    txn.execute("SELECT event_id FROM event_forward_extremities WHERE room_id = ?", (ROOM,))
    found["forward"] = {row[0] for row in txn.fetchall()}
    txn.execute("SELECT event_id, prev_event_id FROM event_edges")
    found["edges"] = set(txn.fetchall())
    txn.execute("SELECT event_id, auth_event_id FROM event_auth_edges")
    found["auth"] = set(txn.fetchall())
    txn.execute("SELECT stream_ordering, state_group FROM room_stream_state WHERE room_id = ?", (ROOM,))
    found["stream_state"] = set(txn.fetchall())
    txn.execute("SELECT outlier, rejected, soft_failed FROM events WHERE event_id = '$msg'")
    found["flags"] = txn.fetchone()
    # Outliers have no state group: the column must take NULL now.
    txn.execute(
        "INSERT INTO events (stream_ordering, event_id, room_id, type, sender, depth, origin_server_ts,"
        " received_ts, state_group, json, outlier) VALUES (-1, '$out', ?, 't', 's', 1, 0, 0, NULL, '{}', 1)",
        (ROOM,))
    return found


@pytest_twisted.ensureDeferred
async def test_old_linear_rooms_become_dags(database: Database, tmp_path: Path) -> None:
    await prepare_database(database, _before_0030(tmp_path))
    await database.run_interaction("old_rows", _old_rows)
    await prepare_database(database)
    found = await database.run_interaction("read", _read)
    assert found["forward"] == {"$msg"}
    assert found["edges"] == {("$join", "$create"), ("$msg", "$join")}
    assert found["auth"] == {("$join", "$create"), ("$msg", "$create"), ("$msg", "$join")}
    assert found["stream_state"] == {(1, 1), (2, 2)}
    assert tuple(found["flags"]) == (0, 0, 0)  # type: ignore[arg-type]
    tables = await database.run_interaction("tables", _has_room_heads)
    assert not tables


def _has_room_heads(txn: Transaction) -> bool:
    try:
        txn.execute("SELECT 1 FROM room_heads")
    except Exception:
        return False
    return True
