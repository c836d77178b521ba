"""Client reads of room state and membership: /state, /members, /joined_members.

In a room joined with partial state each waits until the resync completed the state
(homeserver/handlers/rooms/partial_state.py): a member list must not come up short."""

from __future__ import annotations

from typing import Any

from homeserver.errors import forbidden, not_found
from homeserver.handlers.rooms.event_format import EventFormatter
from homeserver.handlers.rooms.history import parse_token
from homeserver.handlers.rooms.partial_state import PartialStateRooms
from homeserver.handlers.rooms.room_state import RoomStateHandler, StateIds
from homeserver.server import Server
from storage.stores.events import EventStore
from storage.stores.room_dag import RoomDagStore
from storage.stores.room_members import RoomMemberStore
from storage.stores.state import StateGroupStore


class RoomReadHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.state = hs.get(RoomStateHandler)
        self.events = hs.get(EventStore)
        self.members = hs.get(RoomMemberStore)
        self.dag = hs.get(RoomDagStore)
        self.groups = hs.get(StateGroupStore)
        self.formatter = hs.get(EventFormatter)
        self.partial = hs.get(PartialStateRooms)

    async def get_state(self, requester: Any, room_id: str) -> list[dict[str, Any]]:
        await self.partial.wait_until_complete(room_id)
        ids = await self.state.state_visible_to(room_id, requester.user_id)
        loaded = await self.state.load_state(ids)
        return await self.formatter.format_events(list(loaded.values()), requester)

    async def get_state_event(self, requester: Any, room_id: str, event_type: str,
                              state_key: str) -> Any:
        ids = await self.state.state_visible_to(room_id, requester.user_id)
        event_id = ids.get((event_type, state_key))
        stored = await self.events.get_event(event_id) if event_id else None
        if stored is None:
            raise not_found(f"No {event_type} state with key {state_key!r} in the room")
        return stored

    async def get_members(self, requester: Any, room_id: str, at: str | None,
                          membership: str | None, not_membership: str | None) -> list[dict[str, Any]]:
        await self.partial.wait_until_complete(room_id)
        ids = await self.state.state_visible_to(room_id, requester.user_id)
        if at is not None:
            ids = await self._state_at_token(requester, room_id, parse_token(at), ids)
        member_ids = {k: v for k, v in ids.items() if k[0] == "m.room.member"}
        loaded = await self.state.load_state(member_ids)
        chosen = []
        for stored in loaded.values():
            value = stored.event.membership
            if membership is not None and value != membership:
                continue
            if not_membership is not None and value == not_membership:
                continue
            chosen.append(stored)
        chosen.sort(key=lambda s: s.event.state_key or "")
        return await self.formatter.format_events(chosen, requester)

    async def _state_at_token(self, requester: Any, room_id: str, position: int,
                              visible_now: StateIds) -> StateIds:
        current = await self.members.get_membership(room_id, requester.user_id)
        if current is not None and current.membership in ("leave", "ban"):
            position = min(position, current.stream_ordering)
        group = await self.dag.state_group_at(room_id, position)
        if group is None:
            return visible_now
        return await self.groups.get_state_ids(group)

    async def get_joined_members(self, requester: Any, room_id: str) -> dict[str, Any]:
        await self.partial.wait_until_complete(room_id)
        membership, world_readable = await self.state.check_can_read(room_id, requester.user_id)
        if not world_readable and (membership is None or membership.membership != "join"):
            raise forbidden("You aren't a member of the room")
        members = await self.state.get_current_state_ids(room_id)
        member_ids = {k: v for k, v in members.items() if k[0] == "m.room.member"}
        loaded = await self.state.load_state(member_ids)
        joined: dict[str, Any] = {}
        for (_, user_id), stored in loaded.items():
            if stored.event.membership != "join":
                continue
            content = stored.event.content
            joined[user_id] = {
                "display_name": content.get("displayname") if isinstance(content.get("displayname"), str) else None,
                "avatar_url": content.get("avatar_url") if isinstance(content.get("avatar_url"), str) else None,
            }
        return {"joined": joined}

    async def get_joined_rooms(self, user_id: str) -> list[str]:
        return sorted(await self.members.get_rooms_for_user(user_id))
