"""Group commit for push actions: one transaction for the rows of many events (and rooms).

Every transaction costs about as much as writing twenty rows (on SQLite, a WAL commit with
fsync), so under load each event paying its own would cost more than the evaluation. While
one write is in flight, rows queue for the next; and when writes come back to back, the next
waits a few milliseconds to gather more. An idle server writes at once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from storage.stores.push_actions import PushAction, PushActionsStore, SharedPush

#: Writes closer together than this are "under load"...
BUSY_WINDOW_S = 0.1
#: ...and then the next one waits this long to gather more rows.
GATHER_S = 0.01


class GroupWriter:
    def __init__(self, store: PushActionsStore, reactor: object) -> None:
        self.store = store
        self.reactor = reactor
        self._rows: list[PushAction] = []
        self._shared: list[SharedPush] = []
        self._waiters: list[Deferred[None]] = []
        self._running = False
        self._last = 0.0

    async def write(self, rows: Sequence[PushAction], shared: Sequence[SharedPush] = ()) -> None:
        """Returns once ``rows`` and ``shared`` are committed (or raises what the write raised)."""
        if not rows and not shared:
            return
        done: Deferred[None] = Deferred()
        self._rows.extend(rows)
        self._shared.extend(shared)
        self._waiters.append(done)
        if not self._running:
            self._running = True
            Deferred.fromCoroutine(self._flush())
        await done

    async def _flush(self) -> None:
        try:
            while self._rows or self._shared:
                if time.monotonic() - self._last < BUSY_WINDOW_S:
                    await deferLater(self.reactor, GATHER_S)  # type: ignore[arg-type]
                rows, shared, waiters = self._rows, self._shared, self._waiters
                self._rows, self._shared, self._waiters = [], [], []
                failure: Exception | None = None
                try:
                    await self.store.add_push_actions(rows, shared)
                except Exception as exc:  # each waiter's caller logs it
                    failure = exc
                self._last = time.monotonic()
                for waiter in waiters:
                    if failure is None:
                        waiter.callback(None)
                    else:
                        waiter.errback(failure)
        finally:
            self._running = False
