"""Fresh, throw-away databases for tests, on either engine.

config = fresh_database_config("psycopg2", tmp_path)
db = create_database(config)
...
await db.close()
drop_database(config)
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions

ENGINES = ("sqlite3", "psycopg2")

POSTGRES_SERVER = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
TEST_DATABASE_PREFIX = "vignette_test_"


def fresh_database_config(engine: str, tmp_path: Path) -> dict[str, Any]:
    """A `database` config section pointing at a new, empty database."""
    if engine == "sqlite3":
        path = tmp_path / f"{TEST_DATABASE_PREFIX}{secrets.token_hex(4)}.db"
        return {"name": "sqlite3", "args": {"database": str(path)}}
    if engine == "psycopg2":
        name = f"{TEST_DATABASE_PREFIX}{secrets.token_hex(6)}"
        _run_on_server(f"CREATE DATABASE {name}")
        return {
            "name": "psycopg2",
            "args": {**POSTGRES_SERVER, "database": name, "cp_min": 1, "cp_max": 5},
        }
    raise ValueError(f"unknown engine {engine!r}")


def drop_database(config: dict[str, Any]) -> None:
    """Remove a database made by fresh_database_config (connections are cut off)."""
    args = config["args"]
    if config["name"] == "sqlite3":
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(args["database"] + suffix).unlink(missing_ok=True)
        return
    name = args["database"]
    if not name.startswith(TEST_DATABASE_PREFIX):
        raise ValueError(f"refusing to drop non-test database {name!r}")
    _run_on_server(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _run_on_server(sql: str) -> None:
    # CREATE/DROP DATABASE cannot run inside a transaction block.
    conn = psycopg2.connect(**POSTGRES_SERVER, dbname="postgres")
    try:
        conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
        with conn.cursor() as cursor:
            cursor.execute(sql)
    finally:
        conn.close()
