"""What push evaluation needs to know of a room: its joined members, their display names,
and the create and power-levels events. Kept per room and brought along by the events the
evaluator sees (it sees every accepted event, in order per room), so a 1,500-member room is
read from the database once, not once per message.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

import attrs

from homeserver.events.event import Event
from homeserver.events.power_levels import CREATE_KEY, POWER_LEVELS_KEY, StateKey
from homeserver.server import Server
from storage.stores.current_state import CurrentStateStore
from storage.stores.events import EventStore
from storage.stores.room_members import RoomMemberStore

MAX_CACHED_ROOMS = 1000
MEMBER = "m.room.member"


@attrs.define
class RoomContext:
    #: Every joined member -> their display name in the room (None when unset or not local).
    joined: dict[str, str | None]
    auth: dict[StateKey, Event]
    #: The local members of ``joined`` (a dict for its order and O(1) removal), kept up by apply.
    _local: dict[str, None] | None = None

    def local_joined(self, suffix: str) -> Iterable[str]:
        """The joined members whose IDs end with ``suffix`` (":" + our server name)."""
        if self._local is None:
            self._local = dict.fromkeys(u for u in self.joined if u.endswith(suffix))
        return self._local

    def apply(self, event: Event, server_name: str) -> None:
        """Bring the context past one accepted event."""
        if event.state_key is None:
            return
        if event.type == MEMBER:
            user_id = event.state_key
            if event.content.get("membership") == "join":
                name = event.content.get("displayname")
                local = user_id.endswith(":" + server_name)
                self.joined[user_id] = name if local and isinstance(name, str) else None
                if local and self._local is not None:
                    self._local[user_id] = None
            else:
                self.joined.pop(user_id, None)
                if self._local is not None:
                    self._local.pop(user_id, None)
        elif (event.type, event.state_key) in (CREATE_KEY, POWER_LEVELS_KEY):
            self.auth[(event.type, event.state_key)] = event


class RoomContexts:
    def __init__(self, hs: Server) -> None:
        self.server_name = hs.server_name
        self.current = hs.get(CurrentStateStore)
        self.members = hs.get(RoomMemberStore)
        self.events = hs.get(EventStore)
        self._rooms: OrderedDict[str, RoomContext] = OrderedDict()

    async def get(self, room_id: str) -> RoomContext:
        found = self._rooms.get(room_id)
        if found is not None:
            self._rooms.move_to_end(room_id)
            return found
        context = await self._load(room_id)
        self._rooms[room_id] = context
        while len(self._rooms) > MAX_CACHED_ROOMS:
            self._rooms.popitem(last=False)
        return context

    def forget(self, room_id: str) -> None:
        self._rooms.pop(room_id, None)

    async def _load(self, room_id: str) -> RoomContext:
        """From the current state (it may already hold events we have not evaluated yet;
        applying those again later changes nothing)."""
        state = await self.current.get_current_state_ids(room_id)
        joined = await self.members.get_users_in_room(room_id)
        suffix = ":" + self.server_name
        wanted = [state[(MEMBER, user)] for user in joined if user.endswith(suffix) and (MEMBER, user) in state]
        wanted += [state[key] for key in (CREATE_KEY, POWER_LEVELS_KEY) if key in state]
        found = await self.events.get_events(wanted)
        names: dict[str, str | None] = dict.fromkeys(joined)
        auth: dict[StateKey, Event] = {}
        for stored in found.values():
            event = stored.event
            if event.type == MEMBER and event.state_key in names:
                name = event.content.get("displayname")
                names[event.state_key] = name if isinstance(name, str) else None
            elif event.state_key is not None:
                auth[(event.type, event.state_key)] = event
        return RoomContext(names, auth)
