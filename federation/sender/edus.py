"""EDUs out: what local users do that other servers must hear of, read off the Streams registry.

Every write is announced on ``Streams`` (storage/streams.py); this listener turns the
announcements of local users' changes into EDUs for the sender:

- typing: ``m.typing`` per local user whose typing changed, to the servers in the room
  (in memory only: typing means nothing after a restart), and again every 40 seconds
  while they still type, since receivers time remote typing out (Synapse: after 60s);
- receipts: ``m.receipt`` for local users' public ``m.read`` receipts, to the servers in
  the room;
- presence (only with ``presence.enabled``): ``m.presence`` to the servers sharing a room
  with the user;
- to_device: the handler already wrote the ``m.direct_to_device`` EDUs to the outbox;
  the announcement names the remote recipients, whose servers are woken.

Remote users' changes arrive on the same streams (the federation receiver writes them)
and are skipped here: they are not ours to send.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall

from federation.sender.destinations import (
    server_of,
    servers_in_room,
    servers_of,
    servers_sharing_a_room,
)
from federation.sender.sender import FederationSender
from homeserver.handlers.ephemeral.presence import now_ms, presence_event
from homeserver.handlers.ephemeral.typing import TypingHandler
from homeserver.server import Server
from storage.stores.presence import PresenceStore
from storage.stores.receipts import UNTHREADED, ReceiptStore
from storage.streams import StreamAdvance, Streams

logger = logging.getLogger(__name__)

#: How often a user who is still typing is announced again (Synapse's FEDERATION_PING_INTERVAL).
TYPING_KEEPALIVE_S = 40.0


class _Serial:
    """Runs ``work`` once at a time; a trigger while it runs makes it run once more."""

    def __init__(self, name: str, work: Callable[[], Awaitable[None]]) -> None:
        self.name = name
        self.work = work
        self.running = False
        self.again = False

    def trigger(self) -> None:
        if self.running:
            self.again = True
            return
        Deferred.fromCoroutine(self._run())

    async def _run(self) -> None:
        self.running = True
        try:
            while True:
                self.again = False
                try:
                    await self.work()
                except Exception:
                    logger.exception("federation EDUs: %s failed", self.name)
                if not self.again:
                    return
        finally:
            self.running = False


class EduForwarder:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.sender = hs.get(FederationSender)
        self.server_name: str = hs.server_name
        self.presence_enabled: bool = hs.config.presence.enabled
        self.typing = hs.get(TypingHandler)
        self.receipts = hs.get(ReceiptStore)
        self.presence = hs.get(PresenceStore)
        self._receipts_seen = 0
        self._presence_seen = 0
        self._typing_rooms: set[str] = set()
        self._typing_sent: dict[str, set[str]] = {}  # room -> local users we said are typing
        self._keepalive: LoopingCall | None = None
        self._serials = {
            "typing": _Serial("typing", self._forward_typing),
            "receipts": _Serial("receipts", self._forward_receipts),
            "presence": _Serial("presence", self._forward_presence),
        }

    async def start(self) -> None:
        """Begin at the streams' current positions: what came before is not news."""
        self._receipts_seen = (await self.receipts.stream_writer()).get_current_token()
        self._presence_seen = (await self.presence.stream_writer()).get_current_token()
        self.hs.get(Streams).add_listener(self._on_advance)
        self._keepalive = LoopingCall(self._typing_keepalive)
        self._keepalive.clock = self.hs.reactor
        self._keepalive.start(TYPING_KEEPALIVE_S, now=False)

    def stop(self) -> None:
        if self._keepalive is not None and self._keepalive.running:
            self._keepalive.stop()

    def _typing_keepalive(self) -> None:
        for room_id, users in list(self._typing_sent.items()):
            still = [u for u in self.typing.typing_users(room_id) if u in users]
            if still:
                Deferred.fromCoroutine(self._send_typing(room_id, [(u, True) for u in still])).addErrback(
                    lambda failure: logger.error("typing keepalive failed: %s", failure.getErrorMessage()))

    def _on_advance(self, advance: StreamAdvance) -> None:
        if advance.stream == "typing":
            self._typing_rooms |= advance.rooms
            self._serials["typing"].trigger()
        elif advance.stream == "receipts" and advance.rooms:  # private receipts name users only
            self._serials["receipts"].trigger()
        elif advance.stream == "presence" and self.presence_enabled:
            self._serials["presence"].trigger()
        elif advance.stream == "to_device":
            for destination in servers_of(advance.users) - {self.server_name}:
                self.sender.wake(destination)

    def _is_local(self, user_id: str) -> bool:
        return server_of(user_id) == self.server_name

    async def _forward_typing(self) -> None:
        rooms, self._typing_rooms = self._typing_rooms, set()
        for room_id in rooms:
            now = {u for u in self.typing.typing_users(room_id) if self._is_local(u)}
            before = self._typing_sent.get(room_id, set())
            if now == before:
                continue
            if now:
                self._typing_sent[room_id] = now
            else:
                self._typing_sent.pop(room_id, None)
            changes = [(u, True) for u in sorted(now - before)] + [(u, False) for u in sorted(before - now)]
            await self._send_typing(room_id, changes)

    async def _send_typing(self, room_id: str, changes: list[tuple[str, bool]]) -> None:
        for destination in await servers_in_room(self.hs, room_id):
            for user_id, typing in changes:
                self.sender.send_ephemeral_edu(destination, "m.typing", {
                    "room_id": room_id, "user_id": user_id, "typing": typing}, f"{room_id} {user_id}")

    async def _forward_receipts(self) -> None:
        upto = self.receipts.current_position()
        if upto <= self._receipts_seen:
            return
        changes = await self.receipts.get_changes(self._receipts_seen, upto)
        self._receipts_seen = upto
        for receipt in changes:
            if receipt.receipt_type != "m.read" or not self._is_local(receipt.user_id):
                continue
            data: dict[str, Any] = {"ts": receipt.ts}
            if receipt.thread_id != UNTHREADED:
                data["thread_id"] = receipt.thread_id
            content = {receipt.room_id: {"m.read": {receipt.user_id: {
                "event_ids": [receipt.event_id], "data": data}}}}
            key = f"{receipt.room_id} {receipt.user_id} {receipt.thread_id}"
            for destination in await servers_in_room(self.hs, receipt.room_id):
                await self.sender.send_edu(destination, "m.receipt", content, key)

    async def _forward_presence(self) -> None:
        upto = self.presence.current_position()
        if upto <= self._presence_seen:
            return
        changes = await self.presence.get_changes(self._presence_seen, upto)
        self._presence_seen = upto
        now = now_ms()
        for state in changes:
            if not self._is_local(state.user_id):
                continue
            content = {"user_id": state.user_id, **presence_event(state, now)["content"]}
            for destination in await servers_sharing_a_room(self.hs, state.user_id):
                await self.sender.send_edu(destination, "m.presence", {"push": [content]}, state.user_id)
