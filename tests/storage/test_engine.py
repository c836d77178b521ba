"""Transactions, after-commit callbacks, retries and restarts on both engines."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.python.threadable import isInIOThread

from storage.engine import (
    Database,
    DatabaseClosedError,
    DatabaseConfigError,
    Transaction,
    create_database,
)
from tests.support.databases import POSTGRES_SERVER, fresh_database_config

# Guards against a hung test if an interleaving goes wrong; not a timing assertion.
HANG_GUARD_SECONDS = 30


async def _make_counter(db: Database) -> None:
    def create(txn: Transaction) -> None:
        txn.execute("CREATE TABLE counter (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)")
        txn.executemany("INSERT INTO counter (id, value) VALUES (?, ?)", [(1, 0), (2, 0)])

    await db.run_interaction("create_counter", create)


async def _counter_values(db: Database) -> list[tuple[Any, ...]]:
    return await db.execute("read_counter", "SELECT id, value FROM counter ORDER BY id")


@pytest_twisted.ensureDeferred
async def test_commit_makes_writes_visible_and_runs_off_reactor(database: Database) -> None:
    await _make_counter(database)
    seen_io_thread: list[bool] = []

    def increment(txn: Transaction, amount: int) -> int:
        seen_io_thread.append(isInIOThread())
        txn.execute("UPDATE counter SET value = value + ? WHERE id = ?", (amount, 1))
        return txn.rowcount

    assert await database.run_interaction("increment", increment, 5) == 1
    assert seen_io_thread == [False]
    assert await _counter_values(database) == [(1, 5), (2, 0)]


@pytest_twisted.ensureDeferred
async def test_exception_rolls_back_every_statement(database: Database) -> None:
    await _make_counter(database)

    def half_then_fail(txn: Transaction) -> None:
        txn.execute("UPDATE counter SET value = 99 WHERE id = 1")
        txn.execute("INSERT INTO counter (id, value) VALUES (3, 3)")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await database.run_interaction("half_then_fail", half_then_fail)
    assert await _counter_values(database) == [(1, 0), (2, 0)]


@pytest_twisted.ensureDeferred
async def test_sql_error_rolls_back_and_connection_stays_usable(database: Database) -> None:
    await _make_counter(database)

    def duplicate(txn: Transaction) -> None:
        txn.execute("UPDATE counter SET value = 7 WHERE id = 2")
        txn.execute("INSERT INTO counter (id, value) VALUES (1, 1)")

    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        await database.run_interaction("duplicate", duplicate)
    assert await _counter_values(database) == [(1, 0), (2, 0)]


@pytest_twisted.ensureDeferred
async def test_call_after_runs_on_reactor_after_commit_in_order(database: Database) -> None:
    await _make_counter(database)
    calls: list[tuple[str, bool]] = []

    def write(txn: Transaction) -> None:
        txn.execute("UPDATE counter SET value = 1 WHERE id = 1")
        txn.call_after(lambda tag: calls.append((tag, isInIOThread())), "first")
        txn.call_after(lambda tag: calls.append((tag, isInIOThread())), "second")
        assert calls == []  # nothing runs before the commit

    await database.run_interaction("write", write)
    assert calls == [("first", True), ("second", True)]


@pytest_twisted.ensureDeferred
async def test_call_after_dropped_on_rollback(database: Database) -> None:
    calls: list[str] = []

    def fail(txn: Transaction) -> None:
        txn.call_after(calls.append, "should not run")
        raise ValueError("rolled back")

    with pytest.raises(ValueError):
        await database.run_interaction("fail", fail)
    assert calls == []


@pytest_twisted.ensureDeferred
async def test_call_after_dropped_when_commit_itself_fails(database: Database) -> None:
    """A deferred foreign key is checked at COMMIT, so the commit (not func) fails."""

    def create(txn: Transaction) -> None:
        txn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        txn.execute(
            "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL"
            " REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
        )

    await database.run_interaction("create", create)
    calls: list[str] = []

    def orphan(txn: Transaction) -> None:
        txn.execute("INSERT INTO child (id, parent_id) VALUES (1, 42)")
        txn.call_after(calls.append, "should not run")

    with pytest.raises(Exception, match="(?i)foreign key"):
        await database.run_interaction("orphan", orphan)
    assert calls == []
    assert await database.execute("count", "SELECT COUNT(*) FROM child") == [(0,)]


@pytest_twisted.ensureDeferred
async def test_failing_after_callback_does_not_hide_commit(database: Database) -> None:
    await _make_counter(database)
    calls: list[str] = []

    def broken_callback() -> None:
        raise RuntimeError("callback bug")

    def write(txn: Transaction) -> str:
        txn.execute("UPDATE counter SET value = 3 WHERE id = 1")
        txn.call_after(broken_callback)
        txn.call_after(calls.append, "still runs")
        return "done"

    assert await database.run_interaction("write", write) == "done"
    assert calls == ["still runs"]
    assert await _counter_values(database) == [(1, 3), (2, 0)]


@pytest_twisted.ensureDeferred
async def test_placeholders_and_literals(database: Database) -> None:
    def roundtrip(txn: Transaction) -> list[tuple[Any, ...]]:
        txn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        txn.execute("INSERT INTO notes (id, body) VALUES (?, ?)", (1, "50% ? done"))
        txn.execute("SELECT body, 'lit?%' FROM notes WHERE body LIKE '50%' AND id = ?", (1,))
        return txn.fetchall()

    assert await database.run_interaction("roundtrip", roundtrip) == [("50% ? done", "lit?%")]


@pytest_twisted.ensureDeferred
async def test_concurrent_read_modify_write_loses_no_update(database: Database) -> None:
    """Twenty interactions each read the counter and write it back plus one."""
    await _make_counter(database)

    def bump(txn: Transaction) -> None:
        txn.execute("SELECT value FROM counter WHERE id = 1")
        row = txn.fetchone()
        assert row is not None
        txn.execute("UPDATE counter SET value = ? WHERE id = 1", (row[0] + 1,))

    await defer.gatherResults(
        [defer.ensureDeferred(database.run_interaction("bump", bump)) for _ in range(20)]
    )
    assert await _counter_values(database) == [(1, 20), (2, 0)]


@pytest_twisted.ensureDeferred
async def test_serialization_failure_is_retried(database: Database) -> None:
    """Force the interleaving read(A) -> update+commit(B) -> update(A): A gets 40001."""
    if database.engine_name != "psycopg2":
        pytest.skip("SQLite runs one transaction at a time; this interleaving cannot happen")
    await _make_counter(database)
    a_has_snapshot = threading.Event()
    b_committed = threading.Event()
    a_attempts: list[int] = []
    a_after_commit: list[int] = []

    def txn_a(txn: Transaction) -> None:
        a_attempts.append(len(a_attempts) + 1)
        txn.execute("SELECT value FROM counter WHERE id = 1")
        row = txn.fetchone()
        assert row is not None
        if len(a_attempts) == 1:
            a_has_snapshot.set()
            assert b_committed.wait(HANG_GUARD_SECONDS)
        txn.execute("UPDATE counter SET value = ? WHERE id = 1", (row[0] + 1,))
        txn.call_after(a_after_commit.append, len(a_attempts))

    def txn_b(txn: Transaction) -> None:
        assert a_has_snapshot.wait(HANG_GUARD_SECONDS)
        txn.execute("UPDATE counter SET value = value + 10 WHERE id = 1")
        txn.call_after(b_committed.set)

    await defer.gatherResults(
        [
            defer.ensureDeferred(database.run_interaction("a", txn_a)),
            defer.ensureDeferred(database.run_interaction("b", txn_b)),
        ]
    )
    assert a_attempts == [1, 2]
    assert a_after_commit == [2]  # the failed attempt's callback was dropped
    assert await _counter_values(database) == [(1, 11), (2, 0)]


@pytest_twisted.ensureDeferred
async def test_deadlock_is_retried(database: Database) -> None:
    """A locks row 1 then 2, B locks row 2 then 1: PostgreSQL aborts one with 40P01."""
    if database.engine_name != "psycopg2":
        pytest.skip("SQLite runs one transaction at a time; it cannot deadlock in process")
    await _make_counter(database)
    a_locked = threading.Event()
    b_locked = threading.Event()
    attempts: list[str] = []

    def lock_both(txn: Transaction, me: str, first: int, second: int) -> None:
        attempts.append(me)
        mine, theirs = (a_locked, b_locked) if me == "a" else (b_locked, a_locked)
        txn.execute("UPDATE counter SET value = value + 1 WHERE id = ?", (first,))
        if attempts.count(me) == 1:
            mine.set()
            assert theirs.wait(HANG_GUARD_SECONDS)
        txn.execute("UPDATE counter SET value = value + 1 WHERE id = ?", (second,))

    await defer.gatherResults(
        [
            defer.ensureDeferred(database.run_interaction("a", lock_both, "a", 1, 2)),
            defer.ensureDeferred(
                database.run_interaction("b", lock_both, me="b", first=2, second=1)
            ),
        ]
    )
    assert len(attempts) == 3  # exactly one of the two was re-run
    assert await _counter_values(database) == [(1, 2), (2, 2)]


@pytest_twisted.ensureDeferred
async def test_reopen_keeps_committed_data(database_config: dict[str, Any]) -> None:
    first = create_database(database_config)
    await _make_counter(first)
    await first.execute("write", "UPDATE counter SET value = ? WHERE id = ?", 41, 2)
    await first.close()
    with pytest.raises(DatabaseClosedError):
        await first.execute("after_close", "SELECT 1")

    second = create_database(database_config)
    try:
        assert await _counter_values(second) == [(1, 0), (2, 41)]
    finally:
        await second.close()


@pytest_twisted.ensureDeferred
async def test_sqlite_durability_settings(database: Database) -> None:
    if database.engine_name != "sqlite3":
        pytest.skip("SQLite pragmas")

    def pragmas(txn: Transaction) -> list[Any]:
        values = []
        for pragma in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout"):
            txn.execute(f"PRAGMA {pragma}")
            row = txn.fetchone()
            assert row is not None
            values.append(row[0])
        return values

    journal_mode, synchronous, foreign_keys, busy_timeout = await database.run_interaction(
        "pragmas", pragmas
    )
    assert journal_mode == "wal"
    assert synchronous == 2  # FULL
    assert foreign_keys == 1
    assert busy_timeout > 0


@pytest_twisted.ensureDeferred
async def test_postgres_isolation_is_repeatable_read(database: Database) -> None:
    if database.engine_name != "psycopg2":
        pytest.skip("PostgreSQL isolation level")
    rows = await database.execute("isolation", "SHOW transaction_isolation")
    assert rows == [("repeatable read",)]


@pytest.mark.parametrize(
    ("config", "complaint"),
    [
        ({"name": "mysql", "args": {}}, "database.name"),
        ({"name": "sqlite3", "args": {}}, "database.args.database"),
        ({"name": "sqlite3", "args": {"database": "x.db", "bogus": 1}}, "bogus"),
        ({"name": "psycopg2", "args": {"host": "127.0.0.1"}}, "database.args.database"),
        ({"name": "psycopg2", "args": {"database": "v", "cp_min": 5, "cp_max": 2}}, "cp_min"),
        ({"name": "psycopg2", "args": "nope"}, "mapping"),
        ("sqlite3", "mapping"),
    ],
)
def test_bad_config_is_a_one_line_error(config: Any, complaint: str) -> None:
    with pytest.raises(DatabaseConfigError, match=complaint) as raised:
        create_database(config)
    assert "\n" not in str(raised.value)


class _ReleaseOnRetry(logging.Handler):
    """Runs `release` when run_interaction logs its first retry, i.e. right after a
    real conflict was seen and before the next attempt starts."""

    def __init__(self, release: Callable[[], None]) -> None:
        super().__init__()
        self._release = release
        self.retries = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying" in record.getMessage():
            self.retries += 1
            if self.retries == 1:
                self._release()


@pytest_twisted.ensureDeferred
async def test_sqlite_database_locked_is_retried(tmp_path: Path) -> None:
    """Another process holds the write lock; our first attempt fails with
    "database is locked", the lock goes away, and the retry succeeds."""
    config = fresh_database_config("sqlite3", tmp_path)
    config["args"]["busy_timeout_ms"] = 20
    db = create_database(config)
    await _make_counter(db)
    other_process = sqlite3.connect(config["args"]["database"], isolation_level=None)
    other_process.execute("BEGIN IMMEDIATE")
    handler = _ReleaseOnRetry(other_process.rollback)
    engine_logger = logging.getLogger("storage.engine.base")
    engine_logger.addHandler(handler)
    previous_level = engine_logger.level
    engine_logger.setLevel(logging.INFO)
    try:
        await db.execute("write", "UPDATE counter SET value = 8 WHERE id = 1")
        assert handler.retries == 1
        assert await _counter_values(db) == [(1, 8), (2, 0)]
    finally:
        engine_logger.removeHandler(handler)
        engine_logger.setLevel(previous_level)
        other_process.close()
        await db.close()


@pytest_twisted.ensureDeferred
async def test_async_interaction_function_is_rejected(database: Database) -> None:
    async def not_allowed(txn: Transaction) -> None:
        txn.execute("SELECT 1")

    with pytest.raises(TypeError, match="plain function"):
        await database.run_interaction("async", not_allowed)


@pytest_twisted.ensureDeferred
async def test_postgres_reconnects_after_connection_is_killed(database: Database) -> None:
    if database.engine_name != "psycopg2":
        pytest.skip("a SQLite file has no connection to lose")
    [(old_pid,)] = await database.execute("pid", "SELECT pg_backend_pid()")
    killer = psycopg2.connect(**POSTGRES_SERVER, dbname="postgres")
    try:
        killer.autocommit = True
        with killer.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", (old_pid,))
            assert cursor.fetchone() == (True,)
    finally:
        killer.close()

    [(new_pid,)] = await database.execute("pid", "SELECT pg_backend_pid()")
    assert new_pid != old_pid


def _commit_level(txn: Transaction) -> str:
    """How this transaction's commit waits for the disk, in the engine's own words."""
    sqlite = txn.engine_name == "sqlite3"
    txn.execute("PRAGMA synchronous" if sqlite else "SHOW synchronous_commit")
    row = txn.fetchone()
    assert row is not None
    return ({1: "no fsync", 2: "fsync"} if sqlite else {"off": "no fsync", "on": "fsync"})[row[0]]


@pytest_twisted.ensureDeferred
async def test_derived_interaction_commits_without_waiting_for_the_disk(database: Database) -> None:
    """Only the derived transaction skips the flush; the next ordinary one waits for it again."""
    await _make_counter(database)

    def increment(txn: Transaction) -> str:
        txn.execute("UPDATE counter SET value = value + 1 WHERE id = 1")
        return _commit_level(txn)

    assert await database.run_interaction("ordinary", increment) == "fsync"
    assert await database.run_derived_interaction("derived", increment) == "no fsync"
    assert await database.run_interaction("ordinary again", increment) == "fsync"
    assert await database.run_derived_interaction("derived again", increment) == "no fsync"
    assert await _counter_values(database) == [(1, 4), (2, 0)]
