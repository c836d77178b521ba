"""Lazily created stream id generators for the E2EE streams ("to_device", "device_lists").

`StreamIdGenerator.create` reads MAX(stream_id) from the database, so it is async and
cannot run in a component's constructor. The first caller starts it; concurrent
callers share the same lookup, so exactly one generator exists per stream.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred

from storage.streams import StreamIdGenerator


class LazyStreamIds:
    """One stream's id generator, created on first use from table.column."""

    def __init__(self, db: Any, table: str, column: str) -> None:
        self._db = db
        self._table = table
        self._column = column
        self._generator: StreamIdGenerator | None = None
        self._waiters: list[Deferred[StreamIdGenerator]] | None = None

    @property
    def ready(self) -> StreamIdGenerator | None:
        """The generator once it exists (None before the first `get()` finished)."""
        return self._generator

    async def get(self) -> StreamIdGenerator:
        if self._generator is not None:
            return self._generator
        if self._waiters is not None:
            waiter: Deferred[StreamIdGenerator] = Deferred()
            self._waiters.append(waiter)
            return await waiter
        self._waiters = []
        try:
            generator = await StreamIdGenerator.create(self._db, self._table, self._column)
        except BaseException as exc:
            waiters, self._waiters = self._waiters, None
            for waiter in waiters:
                waiter.errback(exc)
            raise
        self._generator = generator
        waiters, self._waiters = self._waiters, None
        for waiter in waiters:
            waiter.callback(generator)
        return generator
