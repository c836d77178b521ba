"""SQLite engine: one connection, one thread, every transaction serialised.

SQLite allows a single writer at a time anyway, so one connection on a one-thread
pool is both the simplest and a correct design: no in-process lock contention, and
reads see every committed write. Durability: WAL with synchronous=FULL, so a commit
that returned (and therefore a 200 sent to a client) survives power loss. A derived
transaction (``durable=False``) commits with synchronous=NORMAL: no fsync, and the
next FULL commit's fsync of the log covers it.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

from storage.engine.base import DatabaseConfigError, Engine

# How long SQLite waits for a lock held by another process before "database is locked"
# (which run_interaction then retries). Overridable as args.busy_timeout_ms.
DEFAULT_BUSY_TIMEOUT_MS = 5000


class SqliteEngine(Engine):
    name = "sqlite3"

    def __init__(self, args: dict[str, Any]) -> None:
        path = args.get("database")
        if not isinstance(path, str) or not path:
            raise DatabaseConfigError("database.args.database must be the SQLite file path")
        unknown = set(args) - {"database", "busy_timeout_ms", "cp_min", "cp_max"}
        if unknown:
            raise DatabaseConfigError(
                f"unknown sqlite3 database args: {', '.join(sorted(unknown))}"
            )
        busy_timeout_ms = args.get("busy_timeout_ms", DEFAULT_BUSY_TIMEOUT_MS)
        if not isinstance(busy_timeout_ms, int) or busy_timeout_ms < 0:
            raise DatabaseConfigError("database.args.busy_timeout_ms must be a whole number >= 0")
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        #: The connection's ``PRAGMA synchronous`` (it cannot change inside a transaction).
        self._synchronous = "FULL"

    def pool_size(self) -> tuple[int, int]:
        return 1, 1

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: the driver never opens transactions implicitly; we
        # issue BEGIN ourselves so DDL in migrations is transactional too.
        # check_same_thread=False is safe because the one-thread pool serialises use.
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            timeout=self.busy_timeout_ms / 1000,
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        self._synchronous = "FULL"
        conn.execute("PRAGMA foreign_keys=ON")
        # Deleted and rewritten content is overwritten with zeros, not left in free space:
        # an expunged (self-destructed) message must not survive in the file.
        conn.execute("PRAGMA secure_delete=ON")
        conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
        return conn

    def acquire(self) -> sqlite3.Connection:
        with self._lock:
            if self._conn is None:
                self._conn = self._connect()
            return self._conn

    def release(self, conn: Any, broken: bool) -> None:
        if broken:
            with self._lock:
                if self._conn is conn:
                    self._conn = None
            conn.close()

    def begin(self, conn: sqlite3.Connection, durable: bool = True) -> sqlite3.Cursor:
        synchronous = "FULL" if durable else "NORMAL"
        if synchronous != self._synchronous:
            conn.execute(f"PRAGMA synchronous={synchronous}")
            self._synchronous = synchronous
        cursor = conn.cursor()
        # IMMEDIATE takes the write lock up front, so a transaction never fails half
        # way through on a lock upgrade if another process shares the file.
        cursor.execute("BEGIN IMMEDIATE")
        return cursor

    def is_retryable(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and (
            "database is locked" in str(exc) or "database is busy" in str(exc)
        )

    def is_connection_lost(self, conn: Any, exc: BaseException) -> bool:
        # A local file has no connection to lose.
        return False

    def close_all(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def execute_script(self, cursor: Any, script: str) -> None:
        # sqlite3's executescript() would COMMIT first, breaking the migration's
        # transaction, so split into complete statements and run them one by one.
        statement = ""
        for line in script.splitlines(keepends=True):
            statement += line
            if sqlite3.complete_statement(statement):
                cursor.execute(statement)
                statement = ""
        if statement.strip() and not _only_comments(statement):
            raise ValueError(f"incomplete SQL statement at end of script: {statement!r}")


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in text.splitlines())
