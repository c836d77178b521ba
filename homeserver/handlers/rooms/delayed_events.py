"""Delayed events (MSC4140): events a client schedules now for the server to send later.

Element Call schedules a "leave the call" state event this way and keeps pushing its time
back while the client is alive; when the client vanishes, the server sends it.

- A delayed event is stored with a persisted timer (homeserver/handlers/timers.py), so it
  fires after a restart, and at start-up if it fell due while the server was down.
- It is sent like any other event of its sender, checked against the room's auth rules
  when it is sent (not when scheduled), but not rate limited again.
- It is sent at most once: the send carries the delay_id as its transaction ID (in a scope
  of its own), so a timer that fires again after a crash finds the event already sent.
- A delayed state event is cancelled when someone else sets the same piece of state
  afterwards (Synapse's rule; the MSC's current draft has dropped it to "alternatives").
- Whoever holds a delay_id may cancel, restart or send it: the ID is the capability
  (unguessable, 144 random bits), as the MSC specifies.

What is not kept: the outcome once an event is sent, cancelled or has failed (the MSC's
"finalised" list); a failure at send time is logged.
"""

from __future__ import annotations

import logging
import secrets
from collections import defaultdict
from typing import Any

from homeserver.async_utils import KeyedLocks
from homeserver.errors import MatrixError, bad_json, forbidden, invalid_param, not_found
from homeserver.events.identifiers import is_valid_user_id
from homeserver.events.pdu_format import PDUFormatError, check_pdu_format
from homeserver.events.room_versions import RoomVersion
from homeserver.handlers.accounts.auth import Requester
from homeserver.handlers.ratelimit import RateLimiters
from homeserver.handlers.room_checks import RoomCheckQueue
from homeserver.handlers.rooms.content_validation import validate_state_content
from homeserver.handlers.rooms.event_format import DELAYED_TXN_SCOPE, txn_scope_for
from homeserver.handlers.rooms.message_send import EventSendHandler
from homeserver.handlers.rooms.retention import RETENTION_EVENT, RetentionHandler
from homeserver.handlers.rooms.room_state import RoomStateHandler, check_room_id
from homeserver.handlers.rooms.self_destruct import check_self_destruct
from homeserver.handlers.timers import TimerService
from homeserver.notifier import Notifier, StreamAdvance
from homeserver.server import Server
from storage.stores.delayed_events import (
    DELAYED_EVENT_TIMER,
    DelayedEvent,
    DelayedEventStore,
    TooManyDelayedEvents,
)
from storage.stores.events import EventFilter, EventStore

logger = logging.getLogger(__name__)

#: Events read per query when looking for state that cancels delayed state events.
STATE_SCAN_PAGE = 500


def new_delay_id() -> str:
    return "vde_" + secrets.token_urlsafe(18)


def delay_too_long(delay_ms: int, max_delay_ms: int) -> MatrixError:
    """400 M_INVALID_PARAM, with the fields the MSC's earlier drafts (and matrix-js-sdk) read."""
    return MatrixError(
        400, "M_INVALID_PARAM",
        f"The requested delay ({delay_ms} ms) exceeds the allowed maximum ({max_delay_ms} ms)",
        **{"org.matrix.msc4140.errcode": "M_MAX_DELAY_EXCEEDED", "org.matrix.msc4140.max_delay": max_delay_ms},
    )


def check_buildable(version: RoomVersion, sender: str, room_id: str, event_type: str,
                    state_key: str | None, content: dict[str, Any], now_ms: int) -> None:
    """Refuse now (400/413) what could never be sent: bad JSON for the room version, bad sizes."""
    if "\x00" in event_type or "\x00" in (state_key or ""):
        raise bad_json("Event type and state key may not contain NUL characters")
    if event_type == "m.room.member" and not is_valid_user_id(state_key or ""):
        raise invalid_param(f"{state_key!r} is not a user ID, so cannot be a membership's state key")
    pdu: dict[str, Any] = {"type": event_type, "sender": sender, "room_id": room_id, "content": content,
                           "origin_server_ts": now_ms, "depth": 1, "prev_events": [], "auth_events": []}
    if state_key is not None:
        pdu["state_key"] = state_key
    try:
        check_pdu_format(pdu, version)
    except PDUFormatError as exc:
        if "bytes, over" in str(exc):
            raise MatrixError(413, "M_TOO_LARGE", f"Event too large: {exc}") from None
        raise bad_json(f"Invalid event: {exc}") from None


class DelayedEventsHandler:
    def __init__(self, hs: Server) -> None:
        config = hs.config
        self.max_delay_ms = int(config.max_event_delay_duration or 0)
        self.max_per_user = int(config.max_delayed_events_per_user)
        self.store = hs.get(DelayedEventStore)
        self.events = hs.get(EventStore)
        self.timers = hs.get(TimerService)
        self.sender = hs.get(EventSendHandler)
        self.state = hs.get(RoomStateHandler)
        self.limiter = hs.get(RateLimiters).message
        self.retention = hs.get(RetentionHandler)
        # One action at a time per delay_id, so a cancel never races the send it cancels.
        self._locks: KeyedLocks[str] = KeyedLocks()
        #: Being sent now: left out of the listing, as the event may already be in the room
        #: before its row is deleted (sent first, so a crash in between re-sends it, idempotently).
        self._sending: set[str] = set()
        # Rooms with delayed state events -> the "events" position checked up to.
        self._watched: dict[str, int] = {}
        self._checks = RoomCheckQueue(self._check_room, "delayed events: checking state in %s failed")
        self.timers.register(DELAYED_EVENT_TIMER, self._on_timer)
        hs.get(Notifier).add_listener(self._on_advance)

    @property
    def enabled(self) -> bool:
        return self.max_delay_ms > 0 and self.max_per_user > 0

    async def start(self) -> None:
        """At start-up: catch up on state set since each delayed state event was scheduled."""
        self._watched = await self.store.rooms_with_state_events()
        await self._checks.check_now(self._watched)

    # Scheduling and managing

    async def schedule(self, requester: Any, room_id: str, event_type: str, state_key: str | None,
                       content: dict[str, Any], delay_ms: int, txn_id: str | None = None) -> str:
        """Store a delayed event; its delay_id. A retried ``txn_id`` returns the first one's."""
        if not self.enabled:
            raise forbidden("Sending delayed events has been disallowed")
        if delay_ms < 0:
            raise invalid_param("The delay must be a non-negative integer")
        if delay_ms > self.max_delay_ms:
            raise delay_too_long(delay_ms, self.max_delay_ms)
        check_room_id(room_id)
        version = await self.state.get_room_version(room_id)
        if version is None:
            raise not_found(f"Unknown room {room_id}")
        if state_key is not None:
            validate_state_content(event_type, content)
            if event_type == RETENTION_EVENT:
                self.retention.check_policy(content)
        now = self.timers.now_ms()
        check_buildable(version, requester.user_id, room_id, event_type, state_key, content, now)
        if state_key is None:
            check_self_destruct(event_type, content, now)
        self.limiter.ratelimit(requester.user_id)
        position = (await self.events.stream_writer()).get_current_token()
        delayed = DelayedEvent(new_delay_id(), requester.user_id, requester.device_id, room_id, event_type,
                               state_key, content, delay_ms, now, position)
        txn_key = None
        if txn_id is not None:
            txn_key = (txn_scope_for(requester.user_id, requester.device_id, requester.access_token_id), txn_id)
        try:
            delay_id = await self.store.add(delayed, self.max_per_user, now, txn_key)
        except TooManyDelayedEvents as exc:
            raise MatrixError(429, "M_LIMIT_EXCEEDED", "The maximum number of delayed events has been reached",
                              retry_after_ms=exc.retry_after_ms) from None
        if delay_id == delayed.delay_id:
            if state_key is not None:
                self._watch(room_id, position)
            self.timers.timer_set(delayed.due_ts)
        return delay_id

    async def list_scheduled(self, user_id: str) -> list[dict[str, Any]]:
        """The user's delayed events still waiting, soonest first, as the MSC lists them."""
        return [{
            "delay_id": d.delay_id, "room_id": d.room_id, "type": d.event_type,
            **({"state_key": d.state_key} if d.state_key is not None else {}),
            "delay": d.delay_ms, "running_since": d.running_since, "content": d.content,
        } for d in await self.store.list_for_user(user_id) if d.delay_id not in self._sending]

    async def cancel(self, delay_id: str) -> None:
        async with self._locks.hold(delay_id):
            if not await self.store.delete([delay_id]):
                raise not_found("Delayed event not found")

    async def restart(self, delay_id: str) -> None:
        """Start the delay again from now (Element Call's heartbeat)."""
        async with self._locks.hold(delay_id):
            due = await self.store.restart(delay_id, self.timers.now_ms())
        if due is None:
            raise not_found("Delayed event not found")
        self.timers.timer_set(due)

    async def send_now(self, delay_id: str) -> None:
        """Send it at once; a failure to send is the caller's error, and the event is dropped."""
        async with self._locks.hold(delay_id):
            delayed = await self.store.get(delay_id)
            if delayed is None:
                raise not_found("Delayed event not found")
            self._sending.add(delay_id)
            try:
                try:
                    await self._send(delayed)
                except MatrixError:
                    await self.store.delete([delay_id])
                    raise
                await self.store.delete([delay_id])
            finally:
                self._sending.discard(delay_id)

    # Sending

    async def _on_timer(self, delay_id: str) -> None:
        async with self._locks.hold(delay_id):
            delayed = await self.store.get(delay_id)
            if delayed is None:
                return
            self._sending.add(delay_id)
            try:
                try:
                    event_id = await self._send(delayed)
                    logger.info("delayed event %s of %s sent as %s", delay_id, delayed.user_id, event_id)
                except MatrixError as exc:  # the room said no (left, lost power...): drop it
                    logger.info("delayed event %s of %s in %s was not sent: %s %s", delay_id, delayed.user_id,
                                delayed.room_id, exc.errcode, exc.message)
                await self.store.delete([delay_id])
            finally:
                self._sending.discard(delay_id)

    async def _send(self, delayed: DelayedEvent) -> str:
        requester = Requester(delayed.user_id, delayed.device_id, False, False, None)
        if delayed.state_key is None:
            return await self.sender.send_event(requester, delayed.room_id, delayed.event_type, delayed.content,
                                                delayed.delay_id, txn_scope=DELAYED_TXN_SCOPE, ratelimit=False)
        return await self.sender.send_state(requester, delayed.room_id, delayed.event_type, delayed.state_key,
                                            delayed.content, txn_scope=DELAYED_TXN_SCOPE,
                                            txn_id=delayed.delay_id, ratelimit=False)

    # Cancelling delayed state events that someone else's state replaced

    def _watch(self, room_id: str, position: int) -> None:
        current = self._watched.get(room_id)
        if current is None or position < current:
            self._watched[room_id] = position

    def _on_advance(self, advance: StreamAdvance) -> None:
        if advance.stream != "events" or not self._watched:
            return
        self._checks.mark(advance.rooms & self._watched.keys())

    async def _check_room(self, room_id: str) -> None:
        since = self._watched.get(room_id)
        if since is None:
            return
        upto = (await self.events.stream_writer()).get_current_token()
        delayed = await self.store.state_events_in_room(room_id)
        if not delayed:
            if self._watched.get(room_id) == since:
                del self._watched[room_id]
            return
        by_key: dict[tuple[str, str], list[DelayedEvent]] = defaultdict(list)
        for item in delayed:
            assert item.state_key is not None
            by_key[(item.event_type, item.state_key)].append(item)
        event_filter = EventFilter(types=sorted({item.event_type for item in delayed}))
        cancelled: set[str] = set()
        start = since
        while start < upto:
            page = await self.events.get_room_events_between(room_id, start, upto, STATE_SCAN_PAGE,
                                                             newest_first=False, event_filter=event_filter)
            for stored in page:
                event = stored.event
                for item in by_key.get((event.type, event.state_key), ()) if event.state_key is not None else ():
                    if item.user_id != event.sender and item.scheduled_pos < stored.stream_ordering:
                        cancelled.add(item.delay_id)
            if len(page) < STATE_SCAN_PAGE:
                break
            start = page[-1].stream_ordering
        for delay_id in cancelled:
            async with self._locks.hold(delay_id):
                await self.store.delete([delay_id])
            logger.info("delayed state event %s in %s cancelled: the state was set by someone else",
                        delay_id, room_id)
        if self._watched.get(room_id) == since:
            self._watched[room_id] = upto
