"""PostgreSQL engine: psycopg2 connections pooled on the database threads.

Isolation is REPEATABLE READ. In PostgreSQL that is snapshot isolation: every
statement in an interaction sees one consistent snapshot, and two transactions that
update the same row cannot both commit (the loser gets 40001 and is retried). We do
not use SERIALIZABLE: its predicate locks also abort transactions that merely read
overlapping ranges, which under a busy homeserver turns into retry storms, and the
cases it would additionally catch (write skew) are guarded explicitly with unique
constraints and row locks. Stream ids are allocated in process, not by
read-max-then-insert, so they need no serializable reads.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg2
import psycopg2.extensions

from storage.engine.base import DatabaseConfigError, Engine, qmark_to_pyformat

# Serialization failure and deadlock: a re-run of the whole transaction may succeed.
RETRYABLE_PGCODES = frozenset({"40001", "40P01"})

# Pool options in the config that are ours, not libpq connection parameters.
POOL_ARGS = frozenset({"cp_min", "cp_max", "cp_reconnect", "cp_noisy", "cp_openfun"})


class PostgresEngine(Engine):
    name = "psycopg2"

    def __init__(self, args: dict[str, Any]) -> None:
        try:
            self._cp_min = int(args.get("cp_min", 1))
            self._cp_max = int(args.get("cp_max", 10))
        except (TypeError, ValueError):
            raise DatabaseConfigError("database.args.cp_min/cp_max must be integers") from None
        if self._cp_min < 1 or self._cp_max < self._cp_min:
            raise DatabaseConfigError("database.args needs 1 <= cp_min <= cp_max")
        self._connect_args = {k: v for k, v in args.items() if k not in POOL_ARGS}
        if not self._connect_args.get("database") and not self._connect_args.get("dbname"):
            raise DatabaseConfigError("database.args.database must name the PostgreSQL database")
        self._idle: list[Any] = []
        self._lock = threading.Lock()

    def pool_size(self) -> tuple[int, int]:
        return self._cp_min, self._cp_max

    def _connect(self) -> Any:
        conn = psycopg2.connect(**self._connect_args)
        conn.set_session(
            isolation_level=psycopg2.extensions.ISOLATION_LEVEL_REPEATABLE_READ,
            autocommit=False,
        )
        return conn

    def acquire(self) -> Any:
        # Threads never exceed cp_max, so neither do connections.
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    return conn
        return self._connect()

    def release(self, conn: Any, broken: bool) -> None:
        if broken or conn.closed:
            try:
                conn.close()
            except Exception:
                pass
            return
        with self._lock:
            self._idle.append(conn)

    def begin(self, conn: Any, durable: bool = True) -> Any:
        # psycopg2 opens the transaction implicitly at the first statement.
        cursor = conn.cursor()
        if not durable:  # this transaction only: the commit does not wait for the WAL flush
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        return cursor

    def is_retryable(self, exc: BaseException) -> bool:
        return getattr(exc, "pgcode", None) in RETRYABLE_PGCODES

    def is_connection_lost(self, conn: Any, exc: BaseException) -> bool:
        return bool(conn.closed) and isinstance(
            exc, psycopg2.OperationalError | psycopg2.InterfaceError
        )

    def close_all(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def convert_sql(self, sql: str) -> str:
        return qmark_to_pyformat(sql)

    def execute_script(self, cursor: Any, script: str) -> None:
        # Without parameters psycopg2 sends the text as-is, and the server accepts
        # several statements in one simple query, all inside our transaction.
        cursor.execute(script)
