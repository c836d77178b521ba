"""Helpers for self-destruct and retention tests: look for a string in every row of every
table of a test server's database (either engine), and in a SQLite server's files."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg2

from tests.support.client import Client, q
from tests.support.rooms import V3, next_txn


def rows_containing(database: dict[str, Any], needle: str) -> list[tuple[str, str]]:
    """(table, row) for every row anywhere in the database whose text holds ``needle``."""
    args = database["args"]
    if database["name"] == "sqlite3":
        conn: Any = sqlite3.connect(f"file:{args['database']}?mode=ro", uri=True)
        try:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            return _scan(conn.cursor(), tables, needle)
        finally:
            conn.close()
    conn = psycopg2.connect(host=args["host"], port=args["port"], user=args["user"], dbname=args["database"])
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
            tables = [r[0] for r in cursor.fetchall()]
            return _scan(cursor, tables, needle)
    finally:
        conn.close()


def _scan(cursor: Any, tables: list[str], needle: str) -> list[tuple[str, str]]:
    found = []
    for table in tables:
        cursor.execute(f'SELECT * FROM "{table}"')
        for row in cursor.fetchall():
            text = repr(row)
            if needle in text:
                found.append((table, text))
    return found


def sqlite_files_contain(database: dict[str, Any], needle: str) -> list[str]:
    """Which of the SQLite database's files hold the bytes of ``needle`` (free pages included)."""
    base = database["args"]["database"]
    found = []
    for suffix in ("", "-wal", "-journal"):
        path = Path(base + suffix)
        if path.exists() and needle.encode() in path.read_bytes():
            found.append(path.name)
    return found


def get_event(client: Client, room_id: str, event_id: str) -> Any:
    return client.get(f"{V3}/rooms/{q(room_id)}/event/{q(event_id)}")


def context(client: Client, room_id: str, event_id: str) -> Any:
    return client.get(f"{V3}/rooms/{q(room_id)}/context/{q(event_id)}", params={"limit": "10"})


def relations(client: Client, room_id: str, event_id: str) -> Any:
    return client.get(f"/_matrix/client/v1/rooms/{q(room_id)}/relations/{q(event_id)}")


def send(client: Client, room_id: str, content: dict[str, Any], event_type: str = "m.room.message",
         txn_id: str | None = None) -> Any:
    return client.put(f"{V3}/rooms/{q(room_id)}/send/{event_type}/{txn_id or next_txn()}", content)


def receipt(client: Client, room_id: str, event_id: str, receipt_type: str = "m.read") -> None:
    response = client.post(f"{V3}/rooms/{q(room_id)}/receipt/{receipt_type}/{q(event_id)}", {})
    assert response.status == 200, response
