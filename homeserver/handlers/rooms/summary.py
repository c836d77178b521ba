"""A room as others see it before joining: the public room directory's entry, the space
hierarchy's room chunk and the room summary are all built from the same current state here."""

from __future__ import annotations

from typing import Any

from homeserver.errors import invalid_param, not_found
from homeserver.events.identifiers import is_valid_room_alias
from homeserver.handlers.rooms.room_state import RoomStateHandler, check_room_id
from homeserver.server import Server
from storage.stores.aliases import AliasStore
from storage.stores.current_state import StateKey
from storage.stores.events import StoredEvent
from storage.stores.room_members import RoomMemberStore

RoomState = dict[StateKey, StoredEvent]
#: Join rules that let anyone see a room's summary (anyone may join or knock).
ALWAYS_VISIBLE_RULES = ("public", "knock", "knock_restricted")
RESTRICTED_RULES = ("restricted", "knock_restricted")
_FIELDS = (
    ("name", "m.room.name", "name"), ("topic", "m.room.topic", "topic"),
    ("canonical_alias", "m.room.canonical_alias", "alias"),
    ("avatar_url", "m.room.avatar", "url"), ("room_type", "m.room.create", "type"),
)


def state_content(state: RoomState, event_type: str, state_key: str = "") -> dict[str, Any]:
    stored = state.get((event_type, state_key))
    return stored.event.content if stored is not None else {}


def join_rule_of(state: RoomState) -> str:
    rule = state_content(state, "m.room.join_rules").get("join_rule", "invite")
    return rule if isinstance(rule, str) else "invite"


def summary_from_state(room_id: str, state: RoomState, joined_members: int) -> dict[str, Any]:
    """The spec's ``PublicRoomsChunk`` fields (the base of the hierarchy's and summary's chunks)."""
    entry: dict[str, Any] = {
        "room_id": room_id,
        "num_joined_members": joined_members,
        "world_readable": state_content(state, "m.room.history_visibility").get("history_visibility")
        == "world_readable",
        "guest_can_join": state_content(state, "m.room.guest_access").get("guest_access") == "can_join",
        "join_rule": join_rule_of(state),
    }
    for key, event_type, field in _FIELDS:
        value = state_content(state, event_type).get(field)
        if isinstance(value, str):
            entry[key] = value
    return entry


class RoomSummaries:
    def __init__(self, hs: Server) -> None:
        self.state = hs.get(RoomStateHandler)
        self.members = hs.get(RoomMemberStore)

    async def state_without_members(self, room_id: str) -> RoomState:
        ids = await self.state.get_current_state_ids(room_id)
        return await self.state.load_state({k: v for k, v in ids.items() if k[0] != "m.room.member"})

    async def summary(self, room_id: str, state: RoomState | None = None) -> dict[str, Any]:
        if state is None:
            state = await self.state_without_members(room_id)
        return summary_from_state(room_id, state, await self.members.get_joined_member_count(room_id))

    async def state_if_visible(self, user_id: str | None, room_id: str) -> RoomState | None:
        """The room's state (without members) if this server holds it and the user (None: anyone)
        may see its summary: joined or invited, or unless banned a world-readable room, one with a
        join rule letting anyone join or knock, or one restricted to a room the user is joined to."""
        if await self.state.get_room_version(room_id) is None:
            return None
        state = await self.state_without_members(room_id)
        if not state:
            return None
        membership = await self.members.get_membership(room_id, user_id) if user_id is not None else None
        if membership is not None and membership.membership in ("join", "invite"):
            return state
        if membership is not None and membership.membership == "ban":
            return None
        history = state_content(state, "m.room.history_visibility").get("history_visibility")
        if join_rule_of(state) in ALWAYS_VISIBLE_RULES or history == "world_readable":
            return state
        if user_id is not None and join_rule_of(state) in RESTRICTED_RULES and await self._in_allowed_room(user_id, state):
            return state
        return None

    async def _in_allowed_room(self, user_id: str, state: RoomState) -> bool:
        joined = await self.members.get_rooms_for_user(user_id)
        return any(room_id in joined for room_id in allowed_room_ids(state))


def allowed_room_ids(state: RoomState) -> list[str]:
    """The rooms a ``restricted`` join rule names."""
    allow = state_content(state, "m.room.join_rules").get("allow")
    if not isinstance(allow, list):
        return []
    return [a["room_id"] for a in allow
            if isinstance(a, dict) and a.get("type") == "m.room_membership" and isinstance(a.get("room_id"), str)]


class RoomSummaryHandler:
    """MSC3266's room summary (``/v1/room_summary/{roomIdOrAlias}``), for local rooms."""

    def __init__(self, hs: Server) -> None:
        self.summaries = hs.get(RoomSummaries)
        self.aliases = hs.get(AliasStore)
        self.members = hs.get(RoomMemberStore)

    async def get_summary(self, user_id: str | None, room_id_or_alias: str) -> dict[str, Any]:
        room_id = await self._room_id(room_id_or_alias)
        state = await self.summaries.state_if_visible(user_id, room_id) if room_id is not None else None
        if room_id is None or state is None:
            raise not_found("Room not found")
        summary = await self.summaries.summary(room_id, state)
        create = state.get(("m.room.create", ""))
        if create is not None:
            summary["room_version"] = create.event.room_version.identifier
        algorithm = state_content(state, "m.room.encryption").get("algorithm")
        if isinstance(algorithm, str):
            summary["encryption"] = algorithm
        if join_rule_of(state) in RESTRICTED_RULES:
            summary["allowed_room_ids"] = allowed_room_ids(state)
        membership = await self.members.get_membership(room_id, user_id) if user_id is not None else None
        summary["membership"] = membership.membership if membership is not None else "leave"
        return summary

    async def _room_id(self, room_id_or_alias: str) -> str | None:
        if room_id_or_alias.startswith("#"):
            if not is_valid_room_alias(room_id_or_alias):
                raise invalid_param("Not a room ID or alias")
            found = await self.aliases.get_alias(room_id_or_alias)
            return found[0] if found is not None else None
        check_room_id(room_id_or_alias)
        return room_id_or_alias
