"""Searching local users by id or display name.

A searcher sees themself and every user who shares a joined room with them,
using the rooms area's ``RoomMemberStore`` (storage/stores/room_members.py).
Until that store exists the search only finds the searcher.  Users of public
rooms who share no room with the searcher are not included yet (that needs
room join rules from the rooms area).
"""

from __future__ import annotations

import importlib
from typing import Any

from storage.stores.profiles import Profile, ProfileStore

MAX_LIMIT = 50


class UserDirectoryHandler:
    def __init__(self, hs: Any) -> None:
        self.hs = hs
        self.profiles = hs.get(ProfileStore)

    async def visible_users(self, searcher: str) -> set[str]:
        """The searcher plus everyone who shares a joined room with them."""
        visible = {searcher}
        member_store = self._room_member_store()
        if member_store is None:
            return visible
        for room_id in await member_store.get_rooms_for_user(searcher):
            visible |= set(await member_store.get_users_in_room(room_id))
        return visible

    def _room_member_store(self) -> Any | None:
        try:
            module = importlib.import_module("storage.stores.room_members")
        except ImportError:
            return None
        return self.hs.get(module.RoomMemberStore)

    async def search(self, searcher: str, term: str, limit: int) -> tuple[list[Profile], bool]:
        """(matching visible users, whether more matched than ``limit``)."""
        limit = max(0, min(limit, MAX_LIMIT))
        visible = await self.visible_users(searcher)
        found = await self.profiles.search_among(visible, term.strip(), limit + 1)
        return found[:limit], len(found) > limit
