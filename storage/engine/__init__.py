"""Database engines behind one interface: `create_database(config)` -> `Database`."""

from __future__ import annotations

from typing import Any

from storage.engine.base import (
    Database,
    DatabaseClosedError,
    DatabaseConfigError,
    Engine,
    Transaction,
)

__all__ = [
    "Database",
    "DatabaseClosedError",
    "DatabaseConfigError",
    "Transaction",
    "create_database",
]

SUPPORTED_ENGINES = ("sqlite3", "psycopg2")


def _make_engine(config: Any) -> Engine:
    if not isinstance(config, dict):
        raise DatabaseConfigError("database section must be a mapping with 'name' and 'args'")
    name = config.get("name")
    args = config.get("args", {})
    if not isinstance(args, dict):
        raise DatabaseConfigError("database.args must be a mapping")
    if name == "sqlite3":
        from storage.engine.sqlite import SqliteEngine

        return SqliteEngine(args)
    if name == "psycopg2":
        from storage.engine.postgres import PostgresEngine

        return PostgresEngine(args)
    raise DatabaseConfigError(
        f"database.name must be one of {', '.join(SUPPORTED_ENGINES)}, not {name!r}"
    )


def create_database(config: dict[str, Any], reactor: Any = None) -> Database:
    """Build a `Database` from the YAML `database` section.

    Validates the section (raising DatabaseConfigError with a one-line reason) and
    starts the thread pool; connections are opened lazily on first use, so an
    unreachable server shows up on the first interaction (prepare_database).
    """
    return Database(_make_engine(config), reactor)
