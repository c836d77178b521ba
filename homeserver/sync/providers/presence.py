"""presence: m.presence events of users who share a room with the syncing user."""

from __future__ import annotations

from typing import Any

from homeserver.handlers.ephemeral.presence import PresenceHandler, now_ms, presence_event
from homeserver.handlers.rooms.members import joined_users
from homeserver.server import Server
from homeserver.sync.provider import SyncRequest
from homeserver.sync.providers.common import request_filter
from storage.stores.presence import PresenceStore


class PresenceProvider:
    stream = "presence"

    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.handler: PresenceHandler = hs.get(PresenceHandler)
        self.store: PresenceStore = hs.get(PresenceStore)
        self._position = 0

    async def prepare(self) -> None:
        self._position = await self.handler.current_position()

    def current_position(self) -> int:
        return self._position

    def still(self, since: int, upto: int, context: dict[str, Any]) -> bool:
        # Rooms joined in this sync bring their members' current presence.
        return not self.handler.enabled or (upto <= since and not context.get("newly_joined_rooms"))

    async def build(self, request: SyncRequest, since: int | None, upto: int,
                    response: dict[str, Any], context: dict[str, Any]) -> None:
        if not self.handler.enabled:
            return
        presence_filter = request_filter(request, context).presence
        if presence_filter.blocks_everything or not presence_filter.allows_type("m.presence"):
            return
        audience = {request.user_id}
        for room_id in context["joined_rooms"]:
            audience |= await joined_users(self.hs, room_id)
        if since is None:
            states = [s for s in await self.store.get_presence_for_users(sorted(audience))
                      if s.stream_id <= upto]
        else:
            states = [s for s in await self.store.get_changes(since, upto) if s.user_id in audience]
            # People met in a room joined since the last sync: their current presence,
            # which the client has never been sent.
            met: set[str] = set()
            for room_id in context.get("newly_joined_rooms", ()):
                met |= await joined_users(self.hs, room_id)
            met -= {s.user_id for s in states} | {request.user_id}
            if met:
                states += [s for s in await self.store.get_presence_for_users(sorted(met))
                           if s.stream_id <= upto]
        now = now_ms()
        events = presence_filter.filter([presence_event(state, now) for state in states])
        if presence_filter.limit is not None:
            events = events[-presence_filter.limit:] if presence_filter.limit else []
        if events:
            response.setdefault("presence", {"events": []})["events"].extend(events)
