"""Wakes long-polls and WebSockets when a stream advances.

Writers call ``on_new_event(stream, position, users=..., rooms=...)`` after
their transaction commits.  Waiters register interest in a user and a set of
rooms.  The signal is explicit ("stream X advanced to N for these users and
rooms") so a later Redis fan-out between worker processes can carry exactly
the same message.  Waiter entries are removed as soon as they fire or time
out, so the indexes never outgrow the number of live connections.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import attrs
from twisted.internet.defer import Deferred

logger = logging.getLogger(__name__)

StreamListener = Callable[["StreamAdvance"], None]


@attrs.frozen
class StreamAdvance:
    stream: str
    position: int
    users: frozenset[str]
    rooms: frozenset[str]


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
    def __init__(self, hs: Any) -> None:
        self.reactor = hs.reactor
        self.positions: dict[str, int] = {}
        self._by_user: dict[str, set[Waiter]] = {}
        self._by_room: dict[str, set[Waiter]] = {}
        self._global_listeners: list[StreamListener] = []
        # Per attached stream: writes that committed but sit behind an earlier,
        # unfinished id, as (stream_id, users, rooms), announced once covered.
        self._held: dict[str, list[tuple[int, frozenset[str], frozenset[str]]]] = {}
        self._generators: dict[str, Any] = {}

    def add_listener(self, listener: StreamListener) -> None:
        """Hear every advance (e.g. a WebSocket hub, or a Redis publisher)."""
        self._global_listeners.append(listener)

    def on_new_event(self, stream: str, position: int, *, users: Iterable[str] = (),
                     rooms: Iterable[str] = ()) -> None:
        """Stream ``stream`` advanced to ``position``; wake whoever it concerns."""
        advance = StreamAdvance(stream, position, frozenset(users), frozenset(rooms))
        if position > self.positions.get(stream, 0):
            self.positions[stream] = position
        woken: set[Waiter] = set()
        for user_id in advance.users:
            woken |= self._by_user.get(user_id, set())
        for room_id in advance.rooms:
            woken |= self._by_room.get(room_id, set())
        for waiter in woken:
            waiter.fire(advance)
        for listener in self._global_listeners:
            try:
                listener(advance)
            except Exception:
                logger.exception("stream listener failed for %s", advance)

    def attach_stream(self, stream: str, generator: Any) -> None:
        """Let ``on_written`` hold announcements for ``stream`` until its token covers them.

        ``generator`` is the stream's StreamIdGenerator (anything with
        ``get_current_token`` and ``add_advance_listener``).
        """
        if stream in self._generators:
            return
        self._generators[stream] = generator
        self._held[stream] = []
        generator.add_advance_listener(lambda token: self._release(stream, token))

    def on_written(self, stream: str, stream_id: int, *, users: Iterable[str] = (),
                   rooms: Iterable[str] = ()) -> None:
        """A write at ``stream_id`` committed: announce it once the stream is gapless up to it.

        Announcing a position past a still-running earlier write would let a
        waiter read the stream, see nothing new for it, and miss the wake-up
        when the earlier write lands, so we hold it until the token covers it.
        """
        generator = self._generators[stream]
        if generator.get_current_token() >= stream_id:
            self.on_new_event(stream, generator.get_current_token(), users=users, rooms=rooms)
        else:
            self._held[stream].append((stream_id, frozenset(users), frozenset(rooms)))

    def _release(self, stream: str, token: int) -> None:
        held = self._held[stream]
        ready = [entry for entry in held if entry[0] <= token]
        if not ready:
            return
        self._held[stream] = [entry for entry in held if entry[0] > token]
        users = frozenset().union(*(entry[1] for entry in ready))
        rooms = frozenset().union(*(entry[2] for entry in ready))
        self.on_new_event(stream, token, users=users, rooms=rooms)

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
        waiter.deferred.addErrback(lambda failure: (self._forget(waiter), failure)[1])
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
