"""Wakes long-polls and WebSockets when a stream advances.

Writers never call the notifier: they announce through their stream's
``StreamWriter`` (storage/streams.py), which holds each announcement until the
stream's current token covers it, and the notifier hears every stream through
the ``Streams`` registry.  Waiters register interest in a user and a set of
rooms.  The signal is explicit ("stream X advanced to N for these users and
rooms") so a later Redis fan-out between worker processes can carry exactly
the same message.  Waiter entries are removed as soon as they fire or time
out, so the indexes never outgrow the number of live connections.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable
from typing import Any, Generic, TypeVar

from twisted.internet.defer import Deferred

from homeserver.server import Server
from storage.streams import StreamAdvance, Streams

logger = logging.getLogger(__name__)

StreamListener = Callable[["StreamAdvance"], None]

#: Woken connections handled per reactor turn. One message into a big room wakes every
#: member; their builds mostly run from memory, so without slices the reactor would serve
#: nothing else (other rooms' sends, the next message) until the last one is done.
WAKE_SLICE = 64

T = TypeVar("T", bound=Hashable)


class SlicedWaker(Generic[T]):
    """Calls ``wake(item, advance)`` for queued items, ``WAKE_SLICE`` per reactor turn.

    The first slice runs at once, so a small room is woken exactly as without slices; the rest
    follow in later turns. An item queued twice before its turn is woken once, with the first
    advance (what it reads is decided when it builds, not by the advance).
    """

    def __init__(self, reactor: Any, wake: Callable[[T, StreamAdvance], None]) -> None:
        self._reactor = reactor
        self._wake = wake
        self._queue: dict[T, StreamAdvance] = {}
        self._scheduled = False

    def add(self, items: Iterable[T], advance: StreamAdvance) -> None:
        for item in items:
            self._queue.setdefault(item, advance)
        if not self._scheduled:
            self._drain()

    def pending(self) -> int:
        return len(self._queue)

    def _drain(self) -> None:
        self._scheduled = False
        for _ in range(min(WAKE_SLICE, len(self._queue))):
            item = next(iter(self._queue))
            advance = self._queue.pop(item)
            try:
                self._wake(item, advance)
            except Exception:
                logger.exception("waking %r failed", item)
        if self._queue:
            self._scheduled = True
            self._reactor.callLater(0, self._drain)


class Waiter:
    """One parked request; fires once, with the first advance that concerns it."""

    def __init__(self, notifier: Notifier, user_id: str, rooms: frozenset[str]) -> None:
        self.notifier = notifier
        self.user_id = user_id
        self.rooms = rooms
        self.deferred: Deferred[StreamAdvance | None] = Deferred()

    def fire(self, advance: StreamAdvance | None) -> None:
        if not self.deferred.called:
            self.notifier._forget(self)
            self.deferred.callback(advance)


class Notifier:
    def __init__(self, hs: Server) -> None:
        self.reactor = hs.reactor
        self.positions: dict[str, int] = {}
        self._by_user: dict[str, set[Waiter]] = {}
        self._by_room: dict[str, set[Waiter]] = {}
        self._global_listeners: list[StreamListener] = []
        self._waker: SlicedWaker[Waiter] = SlicedWaker(hs.reactor, Waiter.fire)
        hs.get(Streams).add_listener(self.on_advance)

    def add_listener(self, listener: StreamListener) -> None:
        """Hear every advance (e.g. a WebSocket hub, or a Redis publisher)."""
        self._global_listeners.append(listener)

    def on_new_event(self, stream: str, position: int, *, users: Iterable[str] = (),
                     rooms: Iterable[str] = ()) -> None:
        """Stream ``stream`` advanced to ``position`` (tests and replication feed this)."""
        self.on_advance(StreamAdvance(stream, position, frozenset(users), frozenset(rooms)))

    def on_advance(self, advance: StreamAdvance) -> None:
        """A stream advanced; wake whoever it concerns."""
        stream, position = advance.stream, advance.position
        if position > self.positions.get(stream, 0):
            self.positions[stream] = position
        woken: set[Waiter] = set()
        if advance.everyone:  # a follower caught up without knowing whom it concerns
            woken = {waiter for waiters in self._by_user.values() for waiter in waiters}
        for user_id in advance.users:
            woken |= self._by_user.get(user_id, set())
        for room_id in advance.rooms:
            woken |= self._by_room.get(room_id, set())
        self._waker.add(woken, advance)
        for listener in self._global_listeners:
            try:
                listener(advance)
            except Exception:
                logger.exception("stream listener failed for %s", advance)

    def wait(self, user_id: str, rooms: Iterable[str], timeout_ms: int) -> Deferred[StreamAdvance | None]:
        """A Deferred that fires with the next advance for the user or rooms, or None on timeout."""
        waiter = Waiter(self, user_id, frozenset(rooms))
        self._by_user.setdefault(user_id, set()).add(waiter)
        for room_id in waiter.rooms:
            self._by_room.setdefault(room_id, set()).add(waiter)
        timer = self.reactor.callLater(timeout_ms / 1000.0, waiter.fire, None)

        def cancel_timer(result: Any) -> Any:
            if timer.active():
                timer.cancel()
            return result

        waiter.deferred.addBoth(cancel_timer)
        # A cancelled wait (client went away) must not leave entries behind.
        def forget_on_failure(failure: Any) -> Any:
            self._forget(waiter)
            return failure

        waiter.deferred.addErrback(forget_on_failure)
        return waiter.deferred

    def _forget(self, waiter: Waiter) -> None:
        for index, key in ((self._by_user, waiter.user_id), *((self._by_room, r) for r in waiter.rooms)):
            entries = index.get(key)
            if entries is not None:
                entries.discard(waiter)
                if not entries:
                    del index[key]

    def waiter_count(self) -> int:
        return sum(len(entries) for entries in self._by_user.values())
