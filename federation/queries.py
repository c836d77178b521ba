"""Answering other servers' queries that need no room DAG: profiles, aliases, the public room list."""

from __future__ import annotations

from typing import Any

from homeserver.errors import forbidden, invalid_param, not_found
from homeserver.events.identifiers import is_valid_room_alias, is_valid_user_id, server_name_of
from homeserver.handlers.accounts.profile import ProfileHandler, check_key
from homeserver.handlers.rooms.directory import DirectoryHandler
from homeserver.server import Server
from storage.stores.aliases import AliasStore
from storage.stores.room_members import RoomMemberStore

CLASSIC_FIELDS = ("displayname", "avatar_url")


class FederationQueryHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.server_name: str = hs.server_name
        self.allow_public_rooms = hs.config.allow_public_rooms_over_federation

    async def profile(self, user_id: str, field: str | None) -> dict[str, Any]:
        """A local user's public profile, or just one field of it (null when unset)."""
        if not is_valid_user_id(user_id):
            raise invalid_param(f"{user_id!r} is not a user ID")
        if server_name_of(user_id) != self.server_name:
            raise invalid_param("That user is not on this server")
        if field is not None:
            check_key(field)
        fields = (await self.hs.get(ProfileHandler).get_profile(user_id)).to_json()
        if field is None:
            return fields
        if field not in fields and field not in CLASSIC_FIELDS:
            raise not_found("Profile field not set")
        return {field: fields.get(field)}

    async def directory(self, alias: str) -> dict[str, Any]:
        """The room a local alias points at, and servers likely to be in it (ours first)."""
        if not is_valid_room_alias(alias):
            raise invalid_param(f"{alias!r} is not a room alias")
        if server_name_of(alias) != self.server_name:
            raise invalid_param("That alias is not on this server")
        found = await self.hs.get(AliasStore).get_alias(alias)
        if found is None:
            raise not_found("Room alias not found")
        room_id = found[0]
        members = await self.hs.get(RoomMemberStore).get_users_in_room(room_id)
        others = sorted({server_name_of(user_id) for user_id in members} - {self.server_name})
        return {"room_id": room_id, "servers": [self.server_name, *others]}

    async def public_rooms(self, limit: int | None, since: str | None, search_term: str | None) -> dict[str, Any]:
        if not self.allow_public_rooms:
            raise forbidden("This server does not share its room directory over federation")
        return await self.hs.get(DirectoryHandler).public_rooms(limit, since, search_term)
