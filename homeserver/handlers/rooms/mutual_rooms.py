"""``/v1/mutual_rooms``: the rooms the requester and another user are both joined to.

Room IDs come sorted, a page at a time; ``next_batch`` is the last room ID of the page, so
paging needs no server-side state."""

from __future__ import annotations

from typing import Any

from homeserver.errors import invalid_param
from homeserver.events.identifiers import is_valid_room_id, is_valid_user_id
from homeserver.server import Server
from storage.stores.room_members import RoomMemberStore

PAGE = 100


class MutualRoomsHandler:
    def __init__(self, hs: Server) -> None:
        self.members = hs.get(RoomMemberStore)

    async def mutual_rooms(self, requester_id: str, user_id: str, from_token: str | None) -> dict[str, Any]:
        if user_id == requester_id:
            raise invalid_param("You cannot ask for rooms you share with yourself")
        if not is_valid_user_id(user_id):
            raise invalid_param(f"{user_id!r} is not a user ID")
        if from_token is not None and not is_valid_room_id(from_token):
            raise invalid_param("Invalid from token")
        mine = await self.members.get_rooms_for_user(requester_id)
        shared = sorted(mine & await self.members.get_rooms_for_user(user_id))
        after = [room for room in shared if from_token is None or room > from_token]
        page = after[:PAGE]
        result: dict[str, Any] = {"joined": page, "count": len(page)}
        if len(after) > PAGE:
            result["next_batch"] = page[-1]
        return result
