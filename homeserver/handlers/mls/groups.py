"""Which rooms are MLS groups, and who may act in them: room membership stays the authority."""

from __future__ import annotations

from homeserver.errors import forbidden, invalid_param
from homeserver.handlers.mls.common import SUPPORTED_SUITES, room_suite
from homeserver.handlers.rooms.room_state import RoomStateHandler
from homeserver.server import Server
from storage.stores.room_members import RoomMemberStore


class MlsGroups:
    def __init__(self, hs: Server) -> None:
        self.state = hs.get(RoomStateHandler)
        self.members = hs.get(RoomMemberStore)

    async def suite_of(self, room_id: str) -> int | None:
        """The room's MLS ciphersuite, or None if its m.room.encryption is not org.vignette.mls.v1."""
        event = await self.state.get_current_state_event(room_id, "m.room.encryption")
        return room_suite(None if event is None else event.event.content)

    async def require_member_of_mls_room(self, user_id: str, room_id: str) -> int:
        """403 unless joined; 400 unless the room is an MLS room with a suite we support."""
        membership = await self.members.get_membership(room_id, user_id)
        if membership is None or membership.membership != "join":
            raise forbidden("You are not joined to this room")
        suite = await self.suite_of(room_id)
        if suite is None:
            raise invalid_param("This room's encryption algorithm is not org.vignette.mls.v1")
        if suite not in SUPPORTED_SUITES:
            raise invalid_param(f"This room's MLS ciphersuite {suite} is not supported by this server")
        return suite

    async def joined_or_invited(self, room_id: str) -> set[str]:
        memberships = await self.members.get_memberships_in_room(room_id)
        return {user for user, membership in memberships.items() if membership in ("join", "invite")}

    async def joined(self, room_id: str) -> set[str]:
        return await self.members.get_users_in_room(room_id)
