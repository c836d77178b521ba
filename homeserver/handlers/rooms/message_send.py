"""Sending message and state events and redactions on behalf of a client.

Client transaction IDs make `send` and `redact` idempotent per device: a retry (even
after a restart, as the mapping is stored with the event in one transaction) returns
the first event's ID, and a retry racing the original waits for it.

Every send counts against ``rc_message``, except that redacting someone else's
event counts against ``rc_admin_redaction`` when that is configured (Synapse's
split, so moderators can clean up spam faster than they can post).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet.defer import Deferred

from homeserver.errors import MatrixError, forbidden
from homeserver.events.identifiers import server_name_of
from homeserver.handlers.accounts.restrictions import check_not_suspended
from homeserver.handlers.mls.common import MESSAGE_EVENT as MLS_MESSAGE
from homeserver.handlers.mls.hygiene import MlsHygiene
from homeserver.handlers.ratelimit import RateLimiters
from homeserver.handlers.rooms.content_validation import validate_state_content
from homeserver.handlers.rooms.event_format import txn_scope_for
from homeserver.handlers.rooms.retention import RETENTION_EVENT, RetentionHandler
from homeserver.handlers.rooms.room_state import RoomStateHandler, check_room_id
from homeserver.handlers.rooms.self_destruct import check_self_destruct
from homeserver.handlers.rooms.shadow_ban import FakeSends, is_shadow_banned
from homeserver.pipeline import EventPipeline, EventSpec
from homeserver.server import Server
from storage.stores.aliases import AliasStore
from storage.stores.events import EventStore
from storage.stores.txn_ids import TxnIdStore


class EventSendHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.pipeline = hs.get(EventPipeline)
        self.state = hs.get(RoomStateHandler)
        self.txn_ids = hs.get(TxnIdStore)
        self.aliases = hs.get(AliasStore)
        self.limiter = hs.get(RateLimiters).message
        self.admin_redaction_limiter = hs.get(RateLimiters).admin_redaction
        self.events = hs.get(EventStore)
        self._in_flight: dict[tuple[str, str], list[Deferred[str]]] = {}
        self.fake_sends = FakeSends()

    async def send_event(self, requester: Any, room_id: str, event_type: str,
                         content: dict[str, Any], txn_id: str | None = None,
                         redacts: str | None = None, *, txn_scope: str | None = None,
                         ratelimit: bool = True) -> str:
        """Send a message-like event (or a redaction); returns its event ID.

        ``txn_scope`` replaces the requester's device as the scope ``txn_id`` is unique
        in (delayed events use their own); ``ratelimit=False`` is for sends already
        counted when they were scheduled.
        """
        check_room_id(room_id)
        if redacts is None and ratelimit:  # a suspended account may still redact
            await check_not_suspended(self.hs, requester.user_id)
        check_self_destruct(event_type, content, None)
        if event_type == "m.call.invite":
            await self._check_call_invite_allowed(room_id)
        elif event_type == MLS_MESSAGE:
            await self.hs.get(MlsHygiene).check_message(requester.user_id, room_id, content)
        scope = txn_scope or txn_scope_for(requester.user_id, requester.device_id, requester.access_token_id)
        if is_shadow_banned(requester):
            return self.fake_sends.event_id(None if txn_id is None else (scope, txn_id))

        async def send() -> str:
            # Only a new send must expire in the future: a retry of one that has since expired
            # gets its event ID, and a delayed event whose expiry passed while it waited is
            # sent and expunged at once.
            if txn_scope is None:
                check_self_destruct(event_type, content, int(self.hs.clock.seconds() * 1000))
            spec = EventSpec(event_type, requester.user_id, content, redacts=redacts,
                             txn_scope=scope if txn_id is not None else None, txn_id=txn_id)
            return await self._send(requester, room_id, spec, ratelimit)

        if txn_id is None:
            return await send()
        return await self._once(scope, txn_id, send)

    async def _once(self, scope: str, txn_id: str, send: Callable[[], Awaitable[str]]) -> str:
        """Run ``send`` once per (scope, txn_id): a retry, or one racing it, gets the first event ID."""
        key = (scope, txn_id)
        waiters = self._in_flight.get(key)
        if waiters is not None:
            waiter: Deferred[str] = Deferred()
            waiters.append(waiter)
            return await waiter
        waiters = self._in_flight[key] = []
        try:
            existing = await self.txn_ids.get_event_id(scope, txn_id)
            event_id = existing if existing is not None else await send()
        except Exception as exc:
            del self._in_flight[key]
            for waiter in waiters:
                waiter.errback(exc)
            raise
        del self._in_flight[key]
        for waiter in waiters:
            waiter.callback(event_id)
        return event_id

    async def send_state(self, requester: Any, room_id: str, event_type: str, state_key: str,
                         content: dict[str, Any], *, txn_scope: str | None = None,
                         txn_id: str | None = None, ratelimit: bool = True) -> str:
        """Set a piece of room state; unchanged content returns the current event.

        With ``txn_scope`` and ``txn_id`` (delayed events) the send happens at most once.
        """
        check_room_id(room_id)
        if ratelimit:
            await check_not_suspended(self.hs, requester.user_id)
        validate_state_content(event_type, content)
        if event_type == RETENTION_EVENT:
            self.hs.get(RetentionHandler).check_policy(content)
        if event_type == "m.room.canonical_alias":
            await self._check_aliases_point_here(room_id, content)
        if is_shadow_banned(requester):
            return self.fake_sends.event_id(None if txn_scope is None or txn_id is None else (txn_scope, txn_id))

        async def send() -> str:
            current = await self.state.get_current_state_event(room_id, event_type, state_key)
            if current is not None and current.event.sender == requester.user_id \
                    and current.event.content == content:
                return current.event_id
            spec = EventSpec(event_type, requester.user_id, content, state_key,
                             txn_scope=txn_scope if txn_id is not None else None, txn_id=txn_id)
            return await self._send(requester, room_id, spec, ratelimit)

        if txn_scope is None or txn_id is None:
            return await send()
        return await self._once(txn_scope, txn_id, send)

    async def _check_call_invite_allowed(self, room_id: str) -> None:
        """No 1:1 call invites in public rooms, where they would ring everyone (as Synapse refuses)."""
        rules = await self.state.get_current_state_event(room_id, "m.room.join_rules")
        if rules is not None and rules.event.content.get("join_rule") == "public":
            raise forbidden("Call invites are not allowed in public rooms")

    async def _check_aliases_point_here(self, room_id: str, content: dict[str, Any]) -> None:
        """Local aliases named in m.room.canonical_alias must exist and point at this room."""
        aliases = [content.get("alias"), *(content.get("alt_aliases") or [])]
        for alias in aliases:
            if not isinstance(alias, str) or server_name_of(alias) != self.hs.server_name:
                continue
            found = await self.aliases.get_alias(alias)
            if found is None or found[0] != room_id:
                raise MatrixError(400, "M_BAD_ALIAS", f"{alias} does not point to this room")

    async def _send(self, requester: Any, room_id: str, spec: EventSpec, ratelimit: bool = True) -> str:
        if await self.state.get_room_version(room_id) is None:
            raise forbidden(f"User {requester.user_id} is not in room {room_id}")
        if ratelimit:
            limiter = self.limiter
            if self.admin_redaction_limiter is not None and await self._redacts_another_sender(spec):
                limiter = self.admin_redaction_limiter
            limiter.ratelimit(requester.user_id)
        (stored,) = await self.pipeline.submit_local(room_id, [spec])
        return stored.event_id

    async def _redacts_another_sender(self, spec: EventSpec) -> bool:
        if spec.event_type != "m.room.redaction" or spec.redacts is None:
            return False
        original = await self.events.get_event(spec.redacts)
        return original is not None and original.event.sender != spec.sender

