"""Migration 0123: events stored before the search index existed become searchable.

Only what the pipeline would index now is taken: accepted timeline messages, names and topics with
text; not redacted, rejected, outlier or encrypted events, and not text PostgreSQL cannot hold.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest_twisted

from storage.engine import Database, Transaction
from storage.migrate import default_migrations_dir, prepare_database
from storage.stores.event_search import EventSearchStore, SearchQuery

ROOM = "!old:test.local"
KEYS = ("content.body", "content.name", "content.topic")


def _before_0122(tmp_path: Path) -> Path:
    target = tmp_path / "old-migrations"
    target.mkdir()
    for entry in default_migrations_dir().iterdir():
        if entry.name.endswith(".sql") and int(entry.name[:4]) < 122:
            shutil.copyfile(str(entry), target / entry.name)
    return target


EVENTS: list[tuple[int, str, str, str | None, Any, dict[str, int]]] = [
    # (stream, id, type, state_key, content, flags)
    (1, "$name", "m.room.name", "", {"name": "Orchard chat"}, {}),
    (2, "$topic", "m.room.topic", "", {"topic": "apples and pears"}, {}),
    (3, "$msg", "m.room.message", None, {"msgtype": "m.text", "body": "the apples are ripe"}, {}),
    (4, "$redacted", "m.room.message", None, {"body": "apples redacted"}, {"redacted": 1}),
    (5, "$rejected", "m.room.message", None, {"body": "apples rejected"}, {"rejected": 1}),
    (6, "$enc", "m.room.encrypted", None, {"ciphertext": "apples"}, {}),
    (7, "$number", "m.room.message", None, {"body": 5}, {}),
    (8, "$nul", "m.room.message", None, {"body": "apples \u0000 nul"}, {}),
    (9, "$statekey", "m.room.name", "x", {"name": "apples"}, {}),
]


def _old_rows(txn: Transaction) -> None:
    for stream, event_id, event_type, state_key, content, flags in EVENTS:
        pdu = {"type": event_type, "room_id": ROOM, "content": content, "sender": "@a:test.local"}
        txn.execute(
            "INSERT INTO events (stream_ordering, event_id, room_id, type, state_key, sender, depth,"
            " origin_server_ts, received_ts, state_group, json, rejected, redacted_by)"
            " VALUES (?, ?, ?, ?, ?, '@a:test.local', ?, ?, 0, 1, ?, ?, ?)",
            (stream, event_id, ROOM, event_type, state_key, stream, 1000 + stream, json.dumps(pdu),
             flags.get("rejected", 0), "$r" if flags.get("redacted") else None))


class _Host:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, cls: Any) -> Any:
        raise NotImplementedError


@pytest_twisted.ensureDeferred
async def test_old_events_are_indexed(database: Database, tmp_path: Path) -> None:
    await prepare_database(database, _before_0122(tmp_path))
    await database.run_interaction("old_rows", _old_rows)
    await prepare_database(database)
    store = EventSearchStore(_Host(database))
    query = SearchQuery(["apple"], [ROOM], KEYS, by_rank=False)
    hits = await store.search(query, 20)
    # SQLite holds the NUL; PostgreSQL's text cannot, so that event stays out there.
    nul = ["$nul"] if database.engine_name == "sqlite3" else []
    assert [hit.event_id for hit in hits] == [*nul, "$msg", "$topic"]
    orchard = await store.search(SearchQuery(["orch"], [ROOM], KEYS, by_rank=True), 20)
    assert [hit.event_id for hit in orchard] == ["$name"]
