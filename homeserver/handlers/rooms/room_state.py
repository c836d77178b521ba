"""Reading room state for clients and for other areas (sync), with access checks.

A joined user sees the current state; a user who left or was banned sees the state
as it was when they left; anyone sees a world-readable room's current state.
"""

from __future__ import annotations

from homeserver.errors import MatrixError, forbidden, not_found
from homeserver.events.event import Event
from homeserver.events.identifiers import is_valid_room_id
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from homeserver.server import Server
from storage.stores.current_state import CurrentStateStore, StateKey
from storage.stores.events import EventStore, StoredEvent
from storage.stores.room_members import Membership, RoomMemberStore
from storage.stores.rooms import RoomStore
from storage.stores.state import StateGroupStore

StateIds = dict[StateKey, str]


def check_room_id(room_id: str) -> None:
    """A malformed room ID is the client's mistake: 400 M_INVALID_PARAM."""
    if not is_valid_room_id(room_id):
        raise MatrixError(400, "M_INVALID_PARAM", f"{room_id!r} is not a valid room ID")


class RoomStateHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.rooms = hs.get(RoomStore)
        self.events = hs.get(EventStore)
        self.current = hs.get(CurrentStateStore)
        self.groups = hs.get(StateGroupStore)
        self.members = hs.get(RoomMemberStore)

    async def get_room_version(self, room_id: str) -> RoomVersion | None:
        version = await self.rooms.get_room_version_id(room_id)
        return KNOWN_ROOM_VERSIONS[version] if version is not None else None

    async def get_current_state_ids(self, room_id: str) -> StateIds:
        """The room's current state (sync's "current state of a room")."""
        return await self.current.get_current_state_ids(room_id)

    async def get_current_state_event(self, room_id: str, event_type: str,
                                      state_key: str = "") -> StoredEvent | None:
        event_id = await self.current.get_current_state_event_id(room_id, event_type, state_key)
        return await self.events.get_event(event_id) if event_id else None

    async def get_current_state_events(self, room_id: str) -> dict[StateKey, StoredEvent]:
        ids = await self.get_current_state_ids(room_id)
        return await self._load(ids)

    async def get_state_ids_after_event(self, stored: StoredEvent) -> StateIds:
        """State including the event itself (if it is a state event); empty for an outlier."""
        if stored.state_group is None:
            return {}
        return await self.groups.get_state_ids(stored.state_group)

    async def get_state_ids_before_event(self, stored: StoredEvent) -> StateIds:
        """State the event was sent in (resolved over its prev_events when they forked).

        The state after a state event is the state before it plus the event itself, so
        the state before is that group with the replaced entry put back. A rejected
        event changed nothing: its group already is the state before it.
        """
        state = await self.get_state_ids_after_event(stored)
        event = stored.event
        if event.state_key is None or stored.rejected or event.type == "m.room.create":
            return state if event.type != "m.room.create" else {}
        key = (event.type, event.state_key)
        if state.get(key) == event.event_id:
            if stored.replaces_state is None:
                del state[key]
            else:
                state[key] = stored.replaces_state
        return state

    async def get_state_ids_at_event_id(self, event_id: str) -> StateIds | None:
        stored = await self.events.get_event(event_id)
        return await self.get_state_ids_after_event(stored) if stored else None

    async def _load(self, ids: StateIds) -> dict[StateKey, StoredEvent]:
        events = await self.events.get_events(ids.values())
        return {k: events[i] for k, i in ids.items() if i in events}

    async def auth_state(self, room_id: str) -> dict[StateKey, Event]:
        """Current state as Events (for power level questions outside the auth rules)."""
        ids = await self.get_current_state_ids(room_id)
        wanted = {k: v for k, v in ids.items() if k[0] != "m.room.member"}
        loaded = await self._load(wanted)
        return {k: s.event for k, s in loaded.items()}

    async def is_world_readable(self, room_id: str) -> bool:
        stored = await self.get_current_state_event(room_id, "m.room.history_visibility")
        return stored is not None and stored.event.content.get("history_visibility") == "world_readable"

    async def check_can_read(self, room_id: str, user_id: str) -> tuple[Membership | None, bool]:
        """(membership, world_readable); 403 unless the user is or was in the room, or may peek."""
        check_room_id(room_id)
        membership = await self.members.get_membership(room_id, user_id)
        if membership is not None and membership.membership in ("join", "leave", "ban"):
            return membership, False
        if await self.is_world_readable(room_id):
            return membership, True
        raise forbidden(f"User {user_id} is not in room {room_id}")

    async def state_visible_to(self, room_id: str, user_id: str) -> StateIds:
        """The state a user may see: current if joined or world-readable, else at their leave."""
        membership, world_readable = await self.check_can_read(room_id, user_id)
        if world_readable or (membership is not None and membership.membership == "join"):
            return await self.get_current_state_ids(room_id)
        assert membership is not None
        stored = await self.events.get_event(membership.event_id)
        if stored is None:
            raise not_found("Membership event missing")
        return await self.get_state_ids_after_event(stored)

    async def load_state(self, ids: StateIds) -> dict[StateKey, StoredEvent]:
        return await self._load(ids)
