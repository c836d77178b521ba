"""Self-destructing messages (docs/self-destruct.md): expunge an event when its time is up.

- ``org.matrix.self_destruct_after`` (absolute ms): the event and its timer are written in
  one transaction by the persister (storage/stores/self_destruct.py), so no event is ever
  stored without its timer; the timer service fires it, at start-up if it fell due while
  the server was down.
- ``org.matrix.self_destruct`` (ms after read): once every joined member other than the
  sender has a read receipt at or after the event, its timer is armed (with the row, in
  one transaction). Rooms are re-checked when a receipt or a membership change arrives
  and at start-up.
- Expunging leaves only the redacted form of the event, in the events table, the event
  cache and the relations table; the row and the timer go in the same transaction.
"""

from __future__ import annotations

import logging
from typing import Any

from twisted.internet.defer import Deferred

from homeserver.errors import MatrixError
from homeserver.events.self_destruct import SelfDestructError, parse_self_destruct, self_destruct_of
from homeserver.handlers.room_checks import RoomCheckQueue
from homeserver.handlers.timers import TimerService
from homeserver.notifier import Notifier, StreamAdvance
from homeserver.pipeline import EventPipeline
from homeserver.pipeline.types import PersistedBatch
from homeserver.server import Server
from storage.stores.events import EventStore
from storage.stores.receipts import ReceiptStore
from storage.stores.room_members import RoomMemberStore
from storage.stores.self_destruct import (
    SELF_DESTRUCT_TIMER,
    PendingRead,
    ReadPosition,
    SelfDestructStore,
)

logger = logging.getLogger(__name__)


def check_self_destruct(event_type: str, content: dict[str, Any], now_ms: int | None) -> None:
    """At send time: 400 for malformed keys, or an absolute time not in the future
    (``now_ms`` None skips that: a delayed event whose time passed while it waited)."""
    try:
        parse_self_destruct(content, now_ms)
    except SelfDestructError as exc:
        raise MatrixError(400, exc.errcode, str(exc)) from None


def has_read(positions: dict[tuple[str, str], int], user_id: str, pending: PendingRead) -> bool:
    """An unthreaded receipt covers every thread; a threaded one only its own thread."""
    threads = ["", pending.thread_id or "main"]
    return any(positions.get((user_id, thread), -1) >= pending.stream_ordering for thread in threads)


def best_positions(receipts: list[ReadPosition]) -> dict[tuple[str, str], int]:
    best: dict[tuple[str, str], int] = {}
    for receipt in receipts:
        key = (receipt.user_id, receipt.thread_id)
        best[key] = max(best.get(key, -1), receipt.stream_ordering)
    return best


class SelfDestructHandler:
    def __init__(self, hs: Server) -> None:
        self.store = hs.get(SelfDestructStore)
        self.events = hs.get(EventStore)
        self.members = hs.get(RoomMemberStore)
        self.receipts = hs.get(ReceiptStore)
        self.timers = hs.get(TimerService)
        #: Rooms with events waiting to be read by everyone.
        self._pending_rooms: set[str] = set()
        self._checks = RoomCheckQueue(self._check_room, "self-destruct: checking %s for read events failed")
        self._receipts_seen: int | None = None
        self.timers.register(SELF_DESTRUCT_TIMER, self._on_timer)
        hs.get(EventPipeline).add_persisted_listener(self._on_persisted)
        hs.get(Notifier).add_listener(self._on_advance)

    async def start(self) -> None:
        """At start-up: rooms where receipts may have arrived before a crash let us look."""
        self._receipts_seen = (await self.receipts.stream_writer()).get_current_token()
        self._pending_rooms |= await self.store.rooms_pending_read()
        await self._checks.check_now(self._pending_rooms)

    async def _on_timer(self, event_id: str) -> None:
        changed = await self.store.expunge(event_id)
        for expunged in {event_id, *changed}:
            self.events.invalidate(expunged)
        logger.info("self-destruct: expunged %s (%d stored events changed)", event_id, len(changed))

    def _on_persisted(self, batch: PersistedBatch) -> None:
        for persisted in batch.events:
            event = persisted.stored.event
            if event.is_state():
                continue
            destruct = self_destruct_of(event.content)
            if destruct is None:
                continue
            if destruct.at_ts is not None:
                self.timers.timer_set(destruct.at_ts)
            if destruct.after_read_ms is not None:
                self._pending_rooms.add(batch.room_id)
                self._checks.mark({batch.room_id})

    def _on_advance(self, advance: StreamAdvance) -> None:
        if not self._pending_rooms:
            return
        if advance.stream == "events":
            self._checks.mark(advance.rooms & self._pending_rooms)
        elif advance.stream == "receipts":
            # Private receipts are announced to their user alone: find their rooms.
            Deferred.fromCoroutine(self._receipts_advanced(advance.position))

    async def _receipts_advanced(self, position: int) -> None:
        since = self._receipts_seen
        if since is None or position <= since:
            return
        self._receipts_seen = position
        try:
            changes = await self.receipts.get_changes(since, position)
        except Exception:
            logger.exception("self-destruct: reading receipts failed")
            self._checks.mark(set(self._pending_rooms))
            return
        self._checks.mark({r.room_id for r in changes} & self._pending_rooms)

    async def _check_room(self, room_id: str) -> None:
        pending = await self.store.pending_read(room_id)
        if not pending:
            self._pending_rooms.discard(room_id)
            return
        joined = await self.members.get_users_in_room(room_id)
        positions = best_positions(await self.store.read_positions(room_id))
        for item in pending:
            if not all(has_read(positions, user, item) for user in joined - {item.sender}):
                continue
            now = self.timers.now_ms()
            due = now + item.after_read_ms
            if item.expires_at is not None:
                due = min(due, item.expires_at)
            if await self.store.start_after_read(item.event_id, now, due):
                logger.info("self-destruct: %s read by everyone; expunging in %d ms", item.event_id, due - now)
                self.timers.timer_set(due)
