"""Making a user a room admin (Synapse's ``POST /_synapse/admin/v1/rooms/{room_id}/make_room_admin``).

The server cannot change a room's power levels by itself: the change is a power levels
event sent by the local member with the most power (it must be allowed to send one), which
gives the target that member's level (100 or more when that member is a v12 creator,
whose power is not written down). A target outside a room that is not public is invited.
"""

from __future__ import annotations

import math
from typing import Any

from homeserver.errors import invalid_param, not_found
from homeserver.events.power_levels import (
    JOIN_RULES_KEY,
    POWER_LEVELS_KEY,
    get_named_level,
    get_user_power_level,
)
from homeserver.handlers.accounts.auth import Requester
from homeserver.handlers.admin.rooms import check_room_id
from homeserver.handlers.admin.users import AdminUsersHandler
from homeserver.handlers.rooms.membership import RoomMemberHandler
from homeserver.handlers.rooms.message_send import EventSendHandler
from homeserver.handlers.rooms.room_state import RoomStateHandler
from homeserver.server import Server
from storage.stores.room_members import RoomMemberStore

ADMIN_LEVEL = 100


def _as(user_id: str) -> Requester:
    return Requester(user_id, None, False, False, None)


class RoomAdminHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.state = hs.get(RoomStateHandler)
        self.members = hs.get(RoomMemberStore)
        self.users = hs.get(AdminUsersHandler)
        self.send = hs.get(EventSendHandler)
        self.membership = hs.get(RoomMemberHandler)

    async def make_room_admin(self, room_id: str, target: str) -> None:
        check_room_id(room_id)
        await self.users.get_existing(target)
        if await self.state.get_room_version(room_id) is None:
            raise not_found("Room not found")
        auth = await self.state.auth_state(room_id)
        suffix = ":" + self.hs.server_name
        local = [u for u in await self.members.get_users_in_room(room_id) if u.endswith(suffix)]
        if not local:
            raise invalid_param("No local member of the room can change its power levels")
        admin = max(sorted(local), key=lambda u: get_user_power_level(u, auth))
        admin_level = get_user_power_level(admin, auth)
        power_levels = auth.get(POWER_LEVELS_KEY)
        content: dict[str, Any] = dict(power_levels.content) if power_levels is not None else {}
        raw_events = content.get("events")
        events: dict[str, Any] = raw_events if isinstance(raw_events, dict) else {}
        needed = events.get("m.room.power_levels", get_named_level("state_default", auth))
        if not isinstance(needed, int) or admin_level < needed:
            raise invalid_param("No local member of the room can change its power levels")
        users = dict(content.get("users") or {})
        if math.isinf(admin_level):
            level = max([ADMIN_LEVEL, *(v for v in users.values() if isinstance(v, int))])
        else:
            level = int(admin_level)
        if target != admin and get_user_power_level(target, auth) < level:
            users[target] = level
            content["users"] = users
            await self.send.send_state(_as(admin), room_id, "m.room.power_levels", "", content, ratelimit=False)
        membership = await self.members.get_membership(room_id, target)
        join_rules = auth.get(JOIN_RULES_KEY)
        public = join_rules is not None and join_rules.content.get("join_rule") == "public"
        if not public and (membership is None or membership.membership not in ("join", "invite")):
            await self.membership.invite(admin, room_id, target)
