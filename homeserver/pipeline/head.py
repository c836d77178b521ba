"""The room as the pipeline holds it in memory: extremities, current state, memberships.

One `RoomHead` per room, kept for the busiest rooms (an LRU of `MAX_CACHED_HEADS`) and
rebuilt from the database otherwise. Only the room's worker touches it, so it needs no
locking; a failed batch drops it so the next batch reloads what was committed.
"""

from __future__ import annotations

from collections import OrderedDict

import attrs

from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from homeserver.server import Server
from storage.stores.room_dag import RoomDagStore
from storage.stores.room_members import RoomMemberStore
from storage.stores.rooms import RoomStore
from storage.stores.state import StateGroupStore, StateMap

#: Rooms whose head stays in memory; others reload on use.
MAX_CACHED_HEADS = 1000


@attrs.frozen(slots=True)
class StateAt:
    """A room state map and the state group that holds it (every map we keep has one)."""

    state: StateMap
    group: int
    chain_length: int


@attrs.define
class RoomHead:
    """The room's DAG tips and the state resolved over them."""

    room_version: RoomVersion
    #: Forward extremities: {event_id: depth}.
    extremities: dict[str, int]
    #: The current state (None until the room has any state: a room known only by outliers).
    current: StateAt | None
    memberships: dict[str, str]

    def copy(self) -> RoomHead:
        return attrs.evolve(self, extremities=dict(self.extremities), memberships=dict(self.memberships))

    @property
    def state(self) -> StateMap:
        return self.current.state if self.current is not None else {}

    @property
    def joined_count(self) -> int:
        return sum(1 for m in self.memberships.values() if m == "join")


class RoomHeads:
    """Loads and caches each room's head."""

    def __init__(self, hs: Server) -> None:
        self.rooms = hs.get(RoomStore)
        self.dag = hs.get(RoomDagStore)
        self.members = hs.get(RoomMemberStore)
        self.groups = hs.get(StateGroupStore)
        self._heads: OrderedDict[str, RoomHead] = OrderedDict()

    async def load(self, room_id: str) -> RoomHead | None:
        """The room's head; None for a room we do not know at all."""
        head = self._heads.get(room_id)
        if head is not None:
            self._heads.move_to_end(room_id)
            return head
        version_id = await self.rooms.get_room_version_id(room_id)
        if version_id is None:
            return None
        group = await self.dag.get_current_state_group(room_id)
        current = None
        if group is not None:
            current = StateAt(await self.groups.get_state_ids(group), group,
                              await self.groups.get_chain_length(group))
        head = RoomHead(
            room_version=KNOWN_ROOM_VERSIONS[version_id],
            extremities=await self.dag.get_forward_extremities(room_id),
            current=current,
            memberships=await self.members.get_memberships_in_room(room_id),
        )
        self.remember(room_id, head)
        return head

    def cached(self, room_id: str) -> RoomHead | None:
        """The head if it is in memory (it is, right after a batch of the room committed)."""
        return self._heads.get(room_id)

    def remember(self, room_id: str, head: RoomHead) -> None:
        self._heads[room_id] = head
        self._heads.move_to_end(room_id)
        while len(self._heads) > MAX_CACHED_HEADS:
            self._heads.popitem(last=False)

    def forget(self, room_id: str) -> None:
        self._heads.pop(room_id, None)
