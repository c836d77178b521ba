"""Room aliases and the public room directory.

Aliases: anyone joined to a room may point a local alias at it; the alias's creator,
a room member allowed to set m.room.canonical_alias, or a server admin may delete it.
The public directory lists rooms published with visibility "public", largest first;
`since` tokens are offsets into that ordering.  ``alias_creation_rules`` and
``room_list_publication_rules`` (Synapse's) decide who may create which aliases
and publish which rooms; server admins may always publish.
"""

from __future__ import annotations

from typing import Any

from homeserver.config.rooms import rules_allow
from homeserver.errors import MatrixError, forbidden, invalid_param, not_found
from homeserver.events.auth import may_send_state
from homeserver.events.identifiers import is_valid_room_alias, server_name_of
from homeserver.handlers.rooms.room_state import RoomStateHandler, check_room_id
from homeserver.handlers.rooms.summary import RoomSummaries
from homeserver.server import Server
from storage.stores.aliases import AliasStore
from storage.stores.room_members import RoomMemberStore
from storage.stores.rooms import RoomStore

MAX_PUBLIC_ROOMS_LIMIT = 500


def check_alias(alias: str) -> None:
    if not is_valid_room_alias(alias):
        raise invalid_param(f"{alias!r} is not a valid room alias")


class DirectoryHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.server_name: str = hs.server_name
        self.aliases = hs.get(AliasStore)
        self.rooms = hs.get(RoomStore)
        self.members = hs.get(RoomMemberStore)
        self.state = hs.get(RoomStateHandler)

    async def resolve_alias(self, alias: str) -> dict[str, Any]:
        check_alias(alias)
        found = await self.aliases.get_alias(alias)
        if found is None:
            if server_name_of(alias) != self.server_name:
                raise not_found("Room alias is on another server; federation is not supported yet")
            raise not_found(f"Room alias {alias} not found")
        return {"room_id": found[0], "servers": [self.server_name]}

    async def create_alias(self, user_id: str, alias: str, room_id: str) -> None:
        check_alias(alias)
        check_room_id(room_id)
        if server_name_of(alias) != self.server_name:
            raise invalid_param("Aliases can only be created on this server")
        if await self.rooms.get_room(room_id) is None:
            raise not_found("Unknown room")
        membership = await self.members.get_membership(room_id, user_id)
        if membership is None or membership.membership != "join":
            raise forbidden("You must be in the room to give it an alias")
        if not rules_allow(self.hs.config.alias_creation_rules, user_id, room_id, [alias], unset_allows=True):
            raise forbidden("Not allowed to create alias")
        if not await self.aliases.create_alias(alias, room_id, user_id):
            raise MatrixError(409, "M_UNKNOWN", f"Room alias {alias} already exists")

    async def delete_alias(self, requester: Any, alias: str) -> None:
        check_alias(alias)
        found = await self.aliases.get_alias(alias)
        if found is None:
            raise not_found(f"Room alias {alias} not found")
        room_id, creator = found
        if not (requester.is_admin or creator == requester.user_id
                or await self._may_change_state(room_id, requester.user_id, "m.room.canonical_alias")):
            raise forbidden("You may not delete this alias")
        await self.aliases.delete_alias(alias)

    async def get_room_aliases(self, user_id: str, room_id: str) -> list[str]:
        await self.state.check_can_read(room_id, user_id)
        return await self.aliases.get_aliases_for_room(room_id)

    async def _may_change_state(self, room_id: str, user_id: str, event_type: str) -> bool:
        """Would the auth rules let this user send this state event now?"""
        state = await self.state.auth_state(room_id)
        member = await self.state.get_current_state_event(room_id, "m.room.member", user_id)
        if member is not None:
            state[("m.room.member", user_id)] = member.event
        return may_send_state(room_id, user_id, event_type, state)

    async def get_visibility(self, room_id: str) -> str:
        check_room_id(room_id)
        room = await self.rooms.get_room(room_id)
        if room is None:
            raise not_found("Unknown room")
        return "public" if room.is_public else "private"

    async def set_visibility(self, requester: Any, room_id: str, visibility: str) -> None:
        check_room_id(room_id)
        if await self.rooms.get_room(room_id) is None:
            raise not_found("Unknown room")
        if not (requester.is_admin
                or await self._may_change_state(room_id, requester.user_id, "m.room.canonical_alias")):
            raise forbidden("You need permission to change the room's published aliases")
        if visibility == "public" and not requester.is_admin:
            aliases = await self.aliases.get_aliases_for_room(room_id)
            canonical = await self.state.get_current_state_event(room_id, "m.room.canonical_alias")
            if canonical is not None and isinstance(canonical.event.content.get("alias"), str):
                aliases.append(canonical.event.content["alias"])
            if not rules_allow(self.hs.config.room_list_publication_rules, requester.user_id, room_id, aliases,
                               unset_allows=False):
                raise forbidden("Not allowed to publish room")
        await self.rooms.set_public(room_id, visibility == "public")

    async def public_rooms(self, limit: int | None, since: str | None,
                           search_term: str | None) -> dict[str, Any]:
        offset = 0
        if since:
            if not since.startswith("o") or not since[1:].isdigit():
                raise invalid_param("Invalid since token")
            offset = int(since[1:])
        entries = []
        for room_id in await self.rooms.get_public_room_ids():
            entry = await self._public_entry(room_id)
            if search_term and not _matches(entry, search_term):
                continue
            entries.append(entry)
        entries.sort(key=lambda e: (-e["num_joined_members"], e["room_id"]))
        limit = min(limit, MAX_PUBLIC_ROOMS_LIMIT) if limit is not None else len(entries)
        chunk = entries[offset:offset + limit] if limit else []
        result: dict[str, Any] = {"chunk": chunk, "total_room_count_estimate": len(entries)}
        if offset + len(chunk) < len(entries) and chunk:
            result["next_batch"] = f"o{offset + len(chunk)}"
        if offset > 0:
            result["prev_batch"] = f"o{max(0, offset - (limit or 0))}"
        return result

    async def _public_entry(self, room_id: str) -> dict[str, Any]:
        return await self.hs.get(RoomSummaries).summary(room_id)


def _matches(entry: dict[str, Any], term: str) -> bool:
    needle = term.lower()
    return any(isinstance(entry.get(k), str) and needle in entry[k].lower()
               for k in ("name", "topic", "canonical_alias", "room_id"))
