"""Rooms joined with partial state (MSC3706): what the client side must know of them.

Until the background resync (federation/membership/partial_state.py) completes a room, its
member list is short: ``/members`` and ``/joined_members`` wait here for the completion, and
sync leaves the room out unless members are lazy-loaded (homeserver/sync/providers/rooms.py),
then shows it as newly joined, with its whole state, from the completion's stream position.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred

from homeserver.server import Server
from storage.stores.partial_state import PartialStateStore


class PartialStateRooms:
    def __init__(self, hs: Server) -> None:
        self.store = hs.get(PartialStateStore)
        self._waiters: dict[str, list[Deferred[None]]] = {}

    async def is_partial(self, room_id: str) -> bool:
        return await self.store.is_partial(room_id)

    async def is_any_partial(self) -> bool:
        return bool(await self.store.get_all())

    async def partial_rooms(self) -> set[str]:
        return {room.room_id for room in await self.store.get_all()}

    async def completed_since(self, position: int) -> dict[str, int]:
        """{room_id: stream position} of the rooms completed after ``position``."""
        return await self.store.completions_since(position)

    async def wait_until_complete(self, room_id: str) -> None:
        """Returns at once for a room with its whole state, else when the resync filled it."""
        if not await self.store.is_partial(room_id):
            return
        deferred: Deferred[None] = Deferred()
        self._waiters.setdefault(room_id, []).append(deferred)
        if not await self.store.is_partial(room_id):  # completed while we registered
            self.completed(room_id)
        await deferred

    def completed(self, room_id: str) -> None:
        """The room's state is whole now (or the room is no longer ours to complete)."""
        for deferred in self._waiters.pop(room_id, []):
            if not deferred.called:
                deferred.callback(None)
