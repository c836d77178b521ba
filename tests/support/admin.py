"""Helpers for the admin API's tests (issue 22): admins, users, and the paths."""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg2

from tests.support.apps import new_admin
from tests.support.client import Client, Response, register_user
from tests.support.server import RunningServer

ADMIN_V1 = "/_synapse/admin/v1"
ADMIN_V2 = "/_synapse/admin/v2"

__all__ = ["ADMIN_V1", "ADMIN_V2", "new_admin", "refused_to_others"]


def refused_to_others(server: RunningServer, method: str, path: str, body: object = None) -> None:
    """A non-admin gets 403 M_FORBIDDEN, no token 401 M_MISSING_TOKEN."""
    user = register_user(server.base_url)
    denied: Response = user.request(method, path, body)
    assert (denied.status, denied.errcode) == (403, "M_FORBIDDEN"), (path, denied)
    anonymous = Client(server.base_url).request(method, path, body)
    assert (anonymous.status, anonymous.errcode) == (401, "M_MISSING_TOKEN"), (path, anonymous)


def connect(database: dict[str, Any]) -> Any:
    """A plain DB-API connection to a test server's database (to check what is left)."""
    args = database["args"]
    if database["name"] == "sqlite3":
        return sqlite3.connect(args["database"])
    return psycopg2.connect(host=args["host"], port=args["port"], user=args["user"], dbname=args["database"])


def table_columns(conn: Any, engine: str) -> dict[str, set[str]]:
    """Every table of the schema and its columns."""
    cursor = conn.cursor()
    if engine == "sqlite3":
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        tables = [row[0] for row in cursor.fetchall()]
        found = {}
        for table in tables:
            cursor.execute(f"PRAGMA table_info({table})")
            found[table] = {row[1] for row in cursor.fetchall()}
        return found
    cursor.execute("SELECT table_name, column_name FROM information_schema.columns"
                   " WHERE table_schema = current_schema()")
    columns: dict[str, set[str]] = {}
    for table, column in cursor.fetchall():
        columns.setdefault(table, set()).add(column)
    return columns


def rows_left(server: RunningServer, room_id: str, event_ids: set[str]) -> dict[str, int]:
    """Per table, the rows that still name the room or one of its events (empty: nothing left)."""
    database = server.config["database"]
    conn = connect(database)
    try:
        left: dict[str, int] = {}
        cursor = conn.cursor()
        mark = "?" if database["name"] == "sqlite3" else "%s"
        ids = sorted(event_ids)
        for table, columns in table_columns(conn, database["name"]).items():
            count = 0
            if "room_id" in columns:
                cursor.execute(f"SELECT COUNT(*) FROM {table} WHERE room_id = {mark}", (room_id,))
                count += cursor.fetchone()[0]
            for column in sorted(columns & {"event_id", "relates_to_id", "redacts", "prev_event_id",
                                            "auth_event_id"}):
                for start in range(0, len(ids), 500):
                    chunk = ids[start:start + 500]
                    cursor.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} IN "
                                   f"({', '.join(mark for _ in chunk)})", chunk)
                    count += cursor.fetchone()[0]
            if count:
                left[table] = count
        return left
    finally:
        conn.close()
