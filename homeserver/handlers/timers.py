"""The one persisted timer service: owners register a kind, write timer rows with their
data, and get called back when a timer falls due, including timers that fell due while
the server was down (they fire at start-up).

Contract for an owner's callback ``fire(key)``: returning normally means the timer is
done, and the service deletes it (unless the callback moved it to a later time, or
removed it itself in its own transaction); raising means "try again later", and the
timer is postponed by ``RETRY_AFTER_MS``. A callback may therefore run more than once
for one timer (a crash after its work but before the delete), so it must be idempotent.

Delayed events (MSC4140), self-destructing messages and retention purge jobs use it,
each with its own kind.

One reactor call is armed at a time, for the earliest due timer; owners call
``timer_set(due_ms)`` after committing a new or moved timer so an earlier one re-arms it.

In a set of processes (docs/workers.md) the timers that purge, expire, send or redact fire
on the background-jobs process only; any other process that writes such a timer hands the
``timer_set`` over the replication channel (``handover``), and the background process also
looks at the table every ``POLL_S`` in case such a message was lost.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from collections.abc import Set as AbstractSet

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import LoopingCall

from homeserver.server import Server
from storage.stores.timers import DueTimer, TimerStore

logger = logging.getLogger(__name__)

TimerCallback = Callable[[str], Awaitable[None]]

#: How long a timer whose callback failed waits before it is tried again.
RETRY_AFTER_MS = 30_000
#: Due timers read per query.
BATCH = 100
#: In a set of processes: how often the process that fires looks for timers written elsewhere.
POLL_S = 30.0


class TimerService:
    def __init__(self, hs: Server) -> None:
        self.reactor = hs.reactor
        self.store = hs.get(TimerStore)
        self._callbacks: dict[str, TimerCallback] = {}
        self._call: IDelayedCall | None = None
        self._armed_for: int | None = None
        self._started = False
        self._running = False
        self._run_again = False
        self._poll: LoopingCall | None = None
        #: Set where timers are written for another process to fire: tells it of ``due_ms``.
        self.handover: Callable[[int], None] | None = None
        hs.reactor.addSystemEventTrigger("before", "shutdown", self.stop)

    def register(self, kind: str, callback: TimerCallback) -> None:
        """Own the timers of ``kind``; register before ``start`` so overdue ones fire at start-up."""
        self._callbacks[kind] = callback

    def keep_only(self, kinds: AbstractSet[str]) -> None:
        """Fire only these kinds here (the background-jobs worker's)."""
        self._callbacks = {kind: fire for kind, fire in self._callbacks.items() if kind in kinds}

    def drop(self, kinds: AbstractSet[str]) -> None:
        """Leave these kinds to another process (main, when a worker runs the background jobs)."""
        self._callbacks = {kind: fire for kind, fire in self._callbacks.items() if kind not in kinds}

    def poll(self, every_s: float = POLL_S) -> None:
        """Look at the table every ``every_s`` too: other processes write timers this one fires."""
        self._poll = LoopingCall(lambda: Deferred.fromCoroutine(self._run()))
        self._poll.clock = self.reactor
        self._poll.start(every_s, now=False)

    def handed_over(self, dues: list[str]) -> None:
        """Timers another process wrote (``handover`` there), due at these times in ms."""
        for due in dues:
            self.timer_set(int(due))

    def now_ms(self) -> int:
        return int(self.reactor.seconds() * 1000)

    async def start(self) -> None:
        """Fire every timer that is already due, then arm for the next."""
        self._started = True
        await self._run()

    def stop(self) -> None:
        self._started = False
        if self._poll is not None and self._poll.running:
            self._poll.stop()
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        self._armed_for = None

    def timer_set(self, due_ms: int) -> None:
        """A timer was written (committed) for ``due_ms``: make sure we wake up by then."""
        if self.handover is not None:
            self.handover(due_ms)
        if not self._started:
            return
        if self._running:
            self._run_again = True
        if self._armed_for is None or due_ms < self._armed_for:
            self._arm(due_ms)

    def _arm(self, due_ms: int) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._armed_for = due_ms
        self._call = self.reactor.callLater(max(0.0, (due_ms - self.now_ms()) / 1000.0), self._wake)

    def _wake(self) -> None:
        self._call = None
        self._armed_for = None
        Deferred.fromCoroutine(self._run())

    async def _run(self) -> None:
        if self._running:
            self._run_again = True
            return
        self._running = True
        try:
            while self._started:
                self._run_again = False
                await self._fire_due()
                if not self._run_again:
                    break
            kinds = list(self._callbacks)
            next_due = await self.store.next_due(kinds)
            if self._started and next_due is not None and (self._armed_for is None or next_due < self._armed_for):
                self._arm(next_due)
        except Exception:  # the database may be down for a moment: look again soon
            logger.exception("timers: checking for due timers failed")
            if self._started:
                self._arm(self.now_ms() + RETRY_AFTER_MS)
        finally:
            self._running = False

    async def _fire_due(self) -> None:
        tried: set[tuple[str, str]] = set()
        while self._started:
            due = [t for t in await self.store.get_due(list(self._callbacks), self.now_ms(), BATCH)
                   if (t.kind, t.key) not in tried]
            if not due:
                return
            for timer in due:
                tried.add((timer.kind, timer.key))
                await self._fire(timer)

    async def _fire(self, timer: DueTimer) -> None:
        try:
            await self._callbacks[timer.kind](timer.key)
        except Exception:
            logger.exception("timers: %s timer %s failed; retrying in %d s", timer.kind, timer.key,
                             RETRY_AFTER_MS // 1000)
            await self.store.postpone(timer.kind, timer.key, self.now_ms() + RETRY_AFTER_MS)
            return
        await self.store.delete_if_unchanged(timer.kind, timer.key, timer.due_ts)
