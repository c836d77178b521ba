"""rooms.join.<room>.ephemeral: who is typing (stream "typing", in memory)."""

from __future__ import annotations

from typing import Any

from homeserver.handlers.ephemeral.typing import TypingHandler
from homeserver.server import Server
from homeserver.sync.provider import SyncRequest
from homeserver.sync.providers.common import joined_room_entry, request_filter


class TypingProvider:
    stream = "typing"

    def __init__(self, hs: Server) -> None:
        self.typing: TypingHandler = hs.get(TypingHandler)

    def current_position(self) -> int:
        return self.typing.current_position()

    def still(self, since: int, upto: int, context: dict[str, Any]) -> bool:
        # Below forgotten_below every room's list is sent again (rooms_changed).
        return since == upto and since >= self.typing.forgotten_below

    async def build(self, request: SyncRequest, since: int | None, upto: int,
                    response: dict[str, Any], context: dict[str, Any]) -> None:
        sync_filter = request_filter(request, context)
        ephemeral = sync_filter.ephemeral
        if ephemeral.blocks_everything or not ephemeral.allows_type("m.typing"):
            return
        joined: set[str] = context["joined_rooms"]
        if since is None and request.since is not None and request.since.get(self.stream) is not None:
            # The builder resets a token from before a restart (typing lives in memory)
            # to None; the client may still show someone typing, so send every room's list.
            since = upto + 1
        for room_id in self.typing.rooms_changed(joined, since, upto):
            if not ephemeral.allows_room(room_id) or not sync_filter.allows_room(room_id):
                continue
            event = {"type": "m.typing", "content": {"user_ids": self.typing.typing_users(room_id)}}
            joined_room_entry(response, room_id)["ephemeral"]["events"].append(event)
