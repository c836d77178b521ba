"""Searching local users by id or display name.

A searcher sees themself, every user who shares a joined room with them, and the
joined members of rooms that are published in the room directory and publicly
joinable (Synapse's default "users who share a room or are in public rooms").
Membership comes from the rooms area's RoomMemberStore; the work per search is
one query per room involved, which is fine at our scale.  A maintained
directory table (updated on membership and join-rule changes) is the step after.

The ``user_directory`` section works as in Synapse: ``enabled: false`` answers
every search with no results, ``search_all_users`` searches every active
user, ``exclude_remote_users`` and ``prefer_local_users`` filter and order by
server.  Searches count against ``rc_user_directory`` per searcher.
"""

from __future__ import annotations

from homeserver.events.identifiers import server_name_of
from homeserver.handlers.ratelimit import RateLimiters
from homeserver.handlers.rooms.room_state import RoomStateHandler
from homeserver.server import Server
from storage.stores.profiles import Profile, ProfileStore
from storage.stores.room_members import RoomMemberStore
from storage.stores.rooms import RoomStore

MAX_LIMIT = 50


class UserDirectoryHandler:
    def __init__(self, hs: Server) -> None:
        self.server_name: str = hs.server_name
        self.config = hs.config.user_directory
        self.limiter = hs.get(RateLimiters).user_directory
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

    def enabled(self) -> bool:
        return bool(self.config.enabled)

    async def search(self, searcher: str, term: str, limit: int) -> tuple[list[Profile], bool]:
        """(matching visible users, whether more matched than ``limit``)."""
        self.limiter.ratelimit(searcher)
        limit = max(0, min(limit, MAX_LIMIT))
        if self.config.search_all_users:
            found = await self.profiles.search_all(term.strip(), limit + 1)
        else:
            found = await self.profiles.search_among(await self.visible_users(searcher), term.strip(), limit + 1)
        if self.config.exclude_remote_users:
            found = [p for p in found if server_name_of(p.user_id) == self.server_name]
        if self.config.prefer_local_users:
            found.sort(key=lambda p: server_name_of(p.user_id) != self.server_name)  # stable: local first
        return found[:limit], len(found) > limit
