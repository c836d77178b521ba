"""Every open stream, indexed by user, room and device, fed by the notifier.

One notifier listener for all sockets; entries are removed when a socket
closes, so the indexes never outgrow the live connections. The sockets an advance
wakes are poked in slices (homeserver/notifier.py ``SlicedWaker``).
"""

from __future__ import annotations

from typing import Any

from homeserver.handlers.mls.delivery import MlsSyncView
from homeserver.http.resource import encode_json_dropping_unencodable
from homeserver.notifier import Notifier, SlicedWaker, StreamAdvance
from homeserver.server import Server
from homeserver.websocket.session import SharedFilters, StreamSession


class WebSocketHub:
    def __init__(self, hs: Server) -> None:
        self._by_user: dict[str, set[StreamSession]] = {}
        self._by_room: dict[str, set[StreamSession]] = {}
        self._rooms_of: dict[StreamSession, set[str]] = {}
        self._by_device: dict[tuple[str, str | None], Any] = {}
        self.filters = SharedFilters()
        self._waker: SlicedWaker[StreamSession] = SlicedWaker(hs.reactor, lambda s, _advance: s.poke())
        hs.get(Notifier).add_listener(self._on_advance)
        hs.get(MlsSyncView).add_pusher(self.push_shared)

    def register(self, session: StreamSession, connection: Any) -> Any | None:
        """Track a new stream; returns the connection it replaces (same device), if any."""
        self._by_user.setdefault(session.user_id, set()).add(session)
        self._rooms_of[session] = set()
        key = (session.user_id, session.device_id)
        previous = self._by_device.get(key)
        self._by_device[key] = connection
        return previous

    def unregister(self, session: StreamSession, connection: Any) -> None:
        session.close()
        self._discard(self._by_user, session.user_id, session)
        for room_id in self._rooms_of.pop(session, set()):
            self._discard(self._by_room, room_id, session)
        key = (session.user_id, session.device_id)
        if self._by_device.get(key) is connection:
            del self._by_device[key]

    def set_rooms(self, session: StreamSession, rooms: set[str]) -> None:
        if session.closed or session not in self._rooms_of:
            return
        old = self._rooms_of[session]
        for room_id in old - rooms:
            self._discard(self._by_room, room_id, session)
        for room_id in rooms - old:
            self._by_room.setdefault(room_id, set()).add(session)
        self._rooms_of[session] = set(rooms)

    def push_shared(self, room_id: str | None, positions: dict[tuple[str, str], int], stream: str, after: int,
                    sections: dict[str, Any], quiet_rest: int | None = None) -> int:
        """One frame body, encoded once, to every idle stream of these devices that is at ``after``.

        With a room, only streams whose user was joined to it at their last frame; each stream's token
        moves to its device's position. With ``quiet_rest`` (a room's change that has nothing for the
        others), the room's other idle streams at ``after`` move to it without a frame. The rest (busy,
        behind) hear the announce and build their own.
        """
        if room_id is not None:
            candidates: set[StreamSession] = self._by_room.get(room_id, set())
        else:
            candidates = set().union(*(self._by_user.get(user_id, set()) for user_id in {u for u, _ in positions}))
        encoded: bytes | None = None
        pushed = 0
        for session in list(candidates):
            position = positions.get((session.user_id, session.device_id or ""))
            if position is None:
                if quiet_rest is not None:
                    session.advance_quietly(stream, after, quiet_rest)
                continue
            if encoded is None:
                encoded = encode_json_dropping_unencodable(sections, f"a shared {stream} frame")[1:-1]
            pushed += session.push_shared(stream, after, position, encoded)
        return pushed

    def connection_count(self) -> int:
        return len(self._rooms_of)

    def _on_advance(self, advance: StreamAdvance) -> None:
        woken: set[StreamSession] = set(self._rooms_of) if advance.everyone else set()
        for user_id in advance.users:
            woken |= self._by_user.get(user_id, set())
        for room_id in advance.rooms:
            woken |= self._by_room.get(room_id, set())
        self._waker.add(woken, advance)

    @staticmethod
    def _discard(index: dict[str, set[StreamSession]], key: str, session: StreamSession) -> None:
        entries = index.get(key)
        if entries is not None:
            entries.discard(session)
            if not entries:
                del index[key]
