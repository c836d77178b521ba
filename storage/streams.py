"""Stream id allocation and the "persisted up to" position of a stream.

A stream's current token is the highest id such that every id at or below it has
finished being written. Readers (sync, the notifier) only ever look at ids up to the
current token, so a slow writer holding an earlier id holds the token back instead
of letting a client skip past it forever.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from storage.engine import Database

logger = logging.getLogger(__name__)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class StreamIdGenerator:
    """Hands out increasing stream ids for one table column, in one process.

    Allocation is in memory, seeded from MAX(column) at start. Ids are finished when
    the `async with` block exits (after the writer's transaction committed, or failed:
    a failed write leaves a harmless hole, and must not block the stream). All methods
    run on the reactor thread, so no locking is needed.

    Multi-worker later: allocation moves to a shared source (a PostgreSQL sequence or
    one writer worker per stream), and the advance listeners are the signal to publish
    over Redis as "stream X advanced to N". Other workers would then feed positions in
    through a method like `advance_to(n)` and call the same listeners. Keep callers
    on `get_next`/`get_current_token`/`add_advance_listener` only, so that swap stays
    local to this class.
    """

    def __init__(self, name: str, current: int) -> None:
        self.name = name
        self._last_allocated = current
        self._current_token = current
        # Ids handed out and not yet finished, in allocation (= increasing) order.
        self._unfinished: dict[int, None] = {}
        self._listeners: list[Callable[[int], None]] = []

    @classmethod
    async def create(cls, db: Database, table: str, column: str) -> StreamIdGenerator:
        """Start from the highest id already stored in table.column (0 when empty)."""
        for identifier in (table, column):
            if not _IDENTIFIER.match(identifier):
                raise ValueError(f"not a plain SQL identifier: {identifier!r}")
        rows = await db.execute(
            f"stream_max_{table}_{column}", f"SELECT MAX({column}) FROM {table}"
        )
        current = rows[0][0] if rows and rows[0][0] is not None else 0
        return cls(f"{table}.{column}", int(current))

    def get_next(self) -> AbstractAsyncContextManager[int]:
        """`async with gen.get_next() as stream_id:` write the row inside the block."""
        return self._allocate_one()

    def get_next_mult(self, n: int) -> AbstractAsyncContextManager[list[int]]:
        """Like get_next, for n consecutive ids written together."""
        if n < 1:
            raise ValueError("need at least one stream id")
        return self._allocate_many(n)

    @asynccontextmanager
    async def _allocate_one(self) -> AsyncIterator[int]:
        async with self._allocate_many(1) as ids:
            yield ids[0]

    @asynccontextmanager
    async def _allocate_many(self, n: int) -> AsyncIterator[list[int]]:
        first = self._last_allocated + 1
        ids = list(range(first, first + n))
        self._last_allocated = ids[-1]
        for stream_id in ids:
            self._unfinished[stream_id] = None
        try:
            yield ids
        finally:
            self._finish(ids)

    def _finish(self, ids: list[int]) -> None:
        for stream_id in ids:
            del self._unfinished[stream_id]
        if self._unfinished:
            new_token = next(iter(self._unfinished)) - 1
        else:
            new_token = self._last_allocated
        if new_token > self._current_token:
            self._current_token = new_token
            self._notify(new_token)

    def _notify(self, token: int) -> None:
        for listener in list(self._listeners):
            try:
                listener(token)
            except Exception:
                logger.exception("stream %s: advance listener %r failed", self.name, listener)

    def get_current_token(self) -> int:
        """Every id at or below this has finished; never past a gap."""
        return self._current_token

    def add_advance_listener(self, fn: Callable[[int], None]) -> None:
        """fn(new_token) runs on the reactor thread each time the current token advances."""
        self._listeners.append(fn)
