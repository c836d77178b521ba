"""Searching local users by id or display name.

A searcher sees themself, every user who shares a joined room with them, and the
joined members of rooms that are published in the room directory and publicly
joinable (Synapse's default "users who share a room or are in public rooms").
Membership comes from the rooms area's RoomMemberStore; the work per search is
one query per room involved, which is fine at our scale.  A maintained
directory table (updated on membership and join-rule changes) is the step after.
"""

from __future__ import annotations

from typing import Any

from homeserver.handlers.rooms.room_state import RoomStateHandler
from storage.stores.profiles import Profile, ProfileStore
from storage.stores.room_members import RoomMemberStore
from storage.stores.rooms import RoomStore

MAX_LIMIT = 50


class UserDirectoryHandler:
    def __init__(self, hs: Any) -> None:
        self.profiles = hs.get(ProfileStore)
        self.members = hs.get(RoomMemberStore)
        self.rooms = hs.get(RoomStore)
        self.state = hs.get(RoomStateHandler)

    async def visible_users(self, searcher: str) -> set[str]:
        visible = {searcher}
        rooms = set(await self.members.get_rooms_for_user(searcher))
        for room_id in await self.rooms.get_public_room_ids():
            if room_id not in rooms and await self._publicly_joinable(room_id):
                rooms.add(room_id)
        for room_id in rooms:
            visible |= set(await self.members.get_users_in_room(room_id))
        return visible

    async def _publicly_joinable(self, room_id: str) -> bool:
        join_rules = await self.state.get_current_state_event(room_id, "m.room.join_rules")
        return join_rules is not None and join_rules.event.content.get("join_rule") == "public"

    async def search(self, searcher: str, term: str, limit: int) -> tuple[list[Profile], bool]:
        """(matching visible users, whether more matched than ``limit``)."""
        limit = max(0, min(limit, MAX_LIMIT))
        visible = await self.visible_users(searcher)
        found = await self.profiles.search_among(visible, term.strip(), limit + 1)
        return found[:limit], len(found) > limit
