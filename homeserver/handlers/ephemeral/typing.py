"""Typing notifications: in memory only, with their own "typing" stream position.

Each change bumps one serial and records it against the room, so sync can ask
"which rooms changed after position N?".  A typing user expires after the
timeout they asked for (capped); one timer per typing user, not per second.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IDelayedCall

from homeserver.errors import forbidden
from homeserver.handlers.rooms.members import is_joined
from homeserver.handlers.rooms.room_state import check_room_id
from homeserver.server import Server
from storage.streams import StreamAdvance, Streams

MAX_TYPING_TIMEOUT_MS = 120_000
DEFAULT_TYPING_TIMEOUT_MS = 30_000
# Rooms where nobody types are forgotten after this many changes elsewhere; a
# client whose token predates the forgetting gets every room's (empty) list.
FORGET_AFTER_CHANGES = 10_000


class TypingHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.reactor = hs.reactor
        self.stream = hs.get(Streams).in_memory("typing")
        # Serial below which per-room change positions may have been forgotten.
        self.forgotten_below = 0
        # Room -> typing user -> their expiry (None in a worker, where the writer expires them).
        self._typing: dict[str, dict[str, IDelayedCall | None]] = {}
        self._changed_at: dict[str, int] = {}

    def current_position(self) -> int:
        return self.stream.get_current_token()

    async def set_typing(self, user_id: str, room_id: str, typing: bool, timeout_ms: int | None,
                         shadow_banned: bool = False) -> None:
        """A shadow-banned user's typing is accepted and shown to no one."""
        check_room_id(room_id)
        if not await is_joined(self.hs, user_id, room_id):
            raise forbidden("You are not in this room")
        if shadow_banned:
            return
        if typing:
            timeout = min(max(timeout_ms or DEFAULT_TYPING_TIMEOUT_MS, 0), MAX_TYPING_TIMEOUT_MS)
            self._start(user_id, room_id, timeout)
        else:
            self._stop(user_id, room_id)

    def _start(self, user_id: str, room_id: str, timeout_ms: int) -> None:
        users = self._typing.setdefault(room_id, {})
        typing_before = user_id in users
        previous = users.get(user_id)
        users[user_id] = self.reactor.callLater(timeout_ms / 1000.0, self._stop, user_id, room_id)
        if typing_before:
            if previous is not None and previous.active():
                previous.cancel()
            return  # still typing: only the expiry moved, nothing to tell anyone
        self._changed(room_id)

    def _stop(self, user_id: str, room_id: str) -> None:
        users = self._typing.get(room_id)
        if not users or user_id not in users:
            return
        timer = users.pop(user_id)
        if timer is not None and timer.active():
            timer.cancel()
        if not users:
            del self._typing[room_id]
        self._changed(room_id)

    def _changed(self, room_id: str) -> None:
        # Recorded before the announcement, which wakes readers synchronously.
        position = self.stream.get_current_token() + 1
        self._changed_at[room_id] = position
        self._forget_quiet_rooms()
        self.stream.advance(rooms=[room_id])

    def _forget_quiet_rooms(self) -> None:
        if len(self._changed_at) < FORGET_AFTER_CHANGES:
            return
        horizon = self.stream.get_current_token() - FORGET_AFTER_CHANGES // 2
        for room_id, at in list(self._changed_at.items()):
            if at < horizon and room_id not in self._typing:
                del self._changed_at[room_id]
        self.forgotten_below = horizon

    def replication_payload(self, advance: StreamAdvance) -> dict[str, Any]:
        """What a worker needs with a typing advance: who types in its rooms (all, on catch-up)."""
        rooms = self._typing if advance.everyone else advance.rooms
        return {"forgotten_below": self.forgotten_below,
                "rooms": {room_id: self.typing_users(room_id) for room_id in rooms}}

    def apply_replicated(self, advance: StreamAdvance, payload: dict[str, Any]) -> None:
        """A worker's copy of the writer's typing lists, updated before readers are woken."""
        rooms: dict[str, list[str]] = payload.get("rooms", {})
        if advance.everyone:
            # A catch-up: the writer may have restarted (positions start again), so take all.
            self._typing.clear()
            self._changed_at.clear()
            self.forgotten_below = advance.position
        for room_id, users in rooms.items():
            if users:
                self._typing[room_id] = dict.fromkeys(users)
            else:
                self._typing.pop(room_id, None)
            self._changed_at[room_id] = advance.position

    def typing_users(self, room_id: str) -> list[str]:
        return sorted(self._typing.get(room_id, {}))

    def rooms_changed(self, room_ids: set[str], since: int | None, upto: int) -> list[str]:
        """Of ``room_ids``, those whose typing list may differ from what ``since`` saw."""
        if since is None:
            return [room_id for room_id in room_ids if room_id in self._typing]
        if since < self.forgotten_below or since > upto:
            # We cannot tell what the client saw (old token, or one from before a
            # restart reset the serial): send every room's current list.
            return list(room_ids)
        return [room_id for room_id in room_ids if since < self._changed_at.get(room_id, 0) <= upto]
