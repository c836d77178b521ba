"""The engine-neutral half of the database layer.

`Database` owns a dedicated Twisted thread pool and runs every interaction there, so
blocking driver calls never stall the reactor. Each interaction is one transaction;
the engine subclass supplies connections and says which errors are worth retrying.
"""

from __future__ import annotations

import abc
import functools
import inspect
import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from twisted.internet import task
from twisted.internet.interfaces import IReactorCore, IReactorThreads, IReactorTime
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

logger = logging.getLogger(__name__)

T = TypeVar("T")

# A retry re-runs the caller's whole function; bounded so a pathological conflict
# surfaces as an error instead of spinning forever.
MAX_ATTEMPTS = 6
BACKOFF_BASE_SECONDS = 0.01


class DatabaseConfigError(Exception):
    """The `database` section of the config is unusable (message is one line)."""


class DatabaseClosedError(Exception):
    """An interaction was requested after `Database.close()`."""


# Splits SQL into single-quoted literals and everything else, so placeholder
# rewriting never touches a '?' inside a string literal.
_QUOTED_LITERAL = re.compile(r"('(?:[^']|'')*')")


@functools.lru_cache(maxsize=4096)
def qmark_to_pyformat(sql: str) -> str:
    """Rewrite "?" placeholders to psycopg2's "%s", escaping literal "%" outside quotes."""
    # psycopg2 interpolates "%" everywhere, even inside quotes, so escape it in
    # every part; only "?" outside quotes (even indexes) is a placeholder.
    parts = _QUOTED_LITERAL.split(sql.replace("%", "%%"))
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("?", "%s")
    return "".join(parts)


class Transaction:
    """What an interaction function receives: one cursor inside one transaction.

    SQL always uses "?" placeholders; the engine converts them where the driver
    wants something else. Callbacks registered with `call_after` run on the reactor
    thread only once the transaction has committed.
    """

    def __init__(self, engine: Engine, cursor: Any) -> None:
        self._engine = engine
        self._cursor = cursor
        self.engine_name: str = engine.name
        self.after_callbacks: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []

    def execute(self, sql: str, args: Sequence[Any] = ()) -> None:
        self._cursor.execute(self._engine.convert_sql(sql), tuple(args))

    def executemany(self, sql: str, args: Iterable[Sequence[Any]]) -> None:
        self._cursor.executemany(self._engine.convert_sql(sql), [tuple(a) for a in args])

    def execute_script(self, script: str) -> None:
        """Run several ";"-separated statements without parameters (used by migrations)."""
        self._engine.execute_script(self._cursor, script)

    def fetchone(self) -> tuple[Any, ...] | None:
        if self._cursor.description is None:
            return None
        row = self._cursor.fetchone()
        return None if row is None else tuple(row)

    def fetchall(self) -> list[tuple[Any, ...]]:
        # A statement without a result set (INSERT, UPDATE...) yields no rows on both
        # engines, instead of psycopg2's "no results to fetch" error.
        if self._cursor.description is None:
            return []
        return [tuple(row) for row in self._cursor.fetchall()]

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)

    def call_after(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run fn(*args) on the reactor thread after a successful commit; dropped on rollback."""
        self.after_callbacks.append((fn, args))


class Engine(abc.ABC):
    """Driver-specific behaviour; runs only on the database thread pool."""

    name: str

    @abc.abstractmethod
    def pool_size(self) -> tuple[int, int]:
        """(min, max) threads for the pool; max also bounds open connections."""

    @abc.abstractmethod
    def acquire(self) -> Any:
        """Hand out a connection ready to start a transaction."""

    @abc.abstractmethod
    def release(self, conn: Any, broken: bool) -> None:
        """Return a connection; `broken` ones are closed and forgotten."""

    @abc.abstractmethod
    def begin(self, conn: Any, durable: bool = True) -> Any:
        """Start a transaction and return a cursor for it. ``durable=False``: its commit
        returns without waiting for the disk (``Database.run_derived_interaction``)."""

    @abc.abstractmethod
    def is_retryable(self, exc: BaseException) -> bool:
        """True for conflicts where re-running the whole function may succeed."""

    @abc.abstractmethod
    def is_connection_lost(self, conn: Any, exc: BaseException) -> bool:
        """True when exc means the connection is dead and must be replaced."""

    @abc.abstractmethod
    def close_all(self) -> None:
        """Close every idle connection."""

    def convert_sql(self, sql: str) -> str:
        return sql

    @abc.abstractmethod
    def execute_script(self, cursor: Any, script: str) -> None:
        """Run a multi-statement script inside the current transaction."""


class _ConnectionLost(Exception):
    """Internal: the connection died before commit, so re-running is safe."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class Database:
    """A pool of connections to one database, used from the reactor thread."""

    def __init__(self, engine: Engine, reactor: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        assert IReactorThreads.providedBy(reactor) and IReactorTime.providedBy(reactor)
        self._reactor: Any = reactor  # checked above; also IReactorCore for shutdown triggers
        self._engine = engine
        self.engine_name: str = engine.name
        min_threads, max_threads = engine.pool_size()
        self._pool = ThreadPool(min_threads, max_threads, name=f"db-{engine.name}")
        self._pool.start()
        self._closed = False
        #: ``fn(desc, seconds)`` after each interaction, committed or not (the metrics listen).
        self.transaction_listeners: list[Callable[[str, float], None]] = []
        self._shutdown_trigger: Any = None
        if IReactorCore.providedBy(reactor):
            self._shutdown_trigger = reactor.addSystemEventTrigger(
                "during", "shutdown", self._stop_pool
            )

    async def run_interaction(
        self, desc: str, func: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T:
        """Run func(txn, *args, **kwargs) in one transaction on the database pool.

        Commits when func returns, rolls back if it raises. Serialization failures,
        deadlocks and "database is locked" re-run the whole function a bounded number
        of times with jittered backoff, so func must not have side effects outside the
        transaction (use txn.call_after for those).
        """
        return await self._run(desc, func, args, kwargs, durable=True)

    async def run_derived_interaction(self, desc: str, func: Callable[..., T], *args: Any) -> T:
        """``run_interaction`` for rows rebuilt from durable data after a crash (push actions):
        the commit does not wait for the disk. Commits still become durable in order (a
        write-ahead log's prefix), so a later durable commit, such as the position up to
        which the rows were derived, makes every earlier one durable too."""
        return await self._run(desc, func, args, {}, durable=False)

    async def _run(self, desc: str, func: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any],
                   durable: bool) -> T:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if self._closed:
                raise DatabaseClosedError(f"database closed; cannot run {desc}")
            started = time.monotonic()
            try:
                try:
                    result, callbacks = await deferToThreadPool(
                        self._reactor, self._pool, self._attempt, func, args, kwargs, durable
                    )
                finally:
                    self._observe(desc, time.monotonic() - started)
            except _ConnectionLost as lost:
                if attempt == MAX_ATTEMPTS:
                    raise lost.cause from None
                logger.warning("%s: connection lost (%s), reconnecting", desc, lost.cause)
            except Exception as exc:
                if attempt == MAX_ATTEMPTS or not self._engine.is_retryable(exc):
                    raise
                logger.info("%s: attempt %d hit a conflict (%s), retrying", desc, attempt, exc)
            else:
                self._run_after_callbacks(desc, callbacks)
                return result
            delay = BACKOFF_BASE_SECONDS * (2 ** (attempt - 1)) * (0.5 + random.random())
            await task.deferLater(self._reactor, delay, lambda: None)
        raise AssertionError("unreachable")

    def _observe(self, desc: str, seconds: float) -> None:
        for listener in self.transaction_listeners:
            try:
                listener(desc, seconds)
            except Exception:
                logger.exception("transaction listener %r failed", listener)

    def _attempt(
        self, func: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any], durable: bool
    ) -> tuple[T, list[tuple[Callable[..., Any], tuple[Any, ...]]]]:
        """One try on a pool thread: begin, run func, commit or roll back."""
        engine = self._engine
        conn = engine.acquire()
        broken = False
        try:
            try:
                cursor = engine.begin(conn, durable)
                txn = Transaction(engine, cursor)
                result = func(txn, *args, **kwargs)
                if inspect.isawaitable(result):
                    # An async function would "commit" before doing anything.
                    _close_awaitable(result)
                    raise TypeError(f"interaction {func!r} must be a plain function, not async")
            except BaseException as exc:
                if engine.is_connection_lost(conn, exc):
                    broken = True
                    raise _ConnectionLost(exc) from exc
                try:
                    conn.rollback()
                except Exception:
                    broken = True
                    logger.exception("rollback failed; discarding connection")
                raise
            try:
                conn.commit()
            except BaseException as exc:
                # A commit that fails on a dead connection has an unknown outcome, so
                # it is not re-run; the caller sees the error.
                broken = engine.is_connection_lost(conn, exc)
                if not broken:
                    try:
                        conn.rollback()
                    except Exception:
                        broken = True
                raise
            return result, txn.after_callbacks
        finally:
            engine.release(conn, broken)

    def _run_after_callbacks(
        self, desc: str, callbacks: list[tuple[Callable[..., Any], tuple[Any, ...]]]
    ) -> None:
        for fn, args in callbacks:
            try:
                fn(*args)
            except Exception:
                # The data is committed; one bad callback must not hide that or skip
                # the others.
                logger.exception("%s: after-commit callback %r failed", desc, fn)

    async def execute(self, desc: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Run one statement in its own transaction and return its rows (if any)."""

        def interaction(txn: Transaction) -> list[tuple[Any, ...]]:
            txn.execute(sql, args)
            return txn.fetchall()

        return await self.run_interaction(desc, interaction)

    async def close(self) -> None:
        """Wait for running interactions, then close every connection."""
        if self._closed:
            return
        self._closed = True
        if self._shutdown_trigger is not None:
            self._reactor.removeSystemEventTrigger(self._shutdown_trigger)
            self._shutdown_trigger = None
        # Joining the pool threads blocks, so do it off the reactor thread.
        await deferToThreadPool(self._reactor, self._reactor.getThreadPool(), self._stop_pool)

    def _stop_pool(self) -> None:
        self._closed = True
        if self._pool.started:
            self._pool.stop()
        self._engine.close_all()


def _close_awaitable(awaitable: Any) -> None:
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()  # avoid "coroutine was never awaited" noise
