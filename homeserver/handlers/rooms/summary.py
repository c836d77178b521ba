"""A room as others see it before joining: the public room directory's entry, the space
hierarchy's room chunk and the room summary are all built from the same current state here."""

from __future__ import annotations

from typing import Any

from homeserver.handlers.rooms.room_state import RoomStateHandler
from homeserver.server import Server
from storage.stores.current_state import StateKey
from storage.stores.events import StoredEvent
from storage.stores.room_members import RoomMemberStore

RoomState = dict[StateKey, StoredEvent]
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
