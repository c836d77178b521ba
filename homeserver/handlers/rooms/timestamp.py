"""``timestamp_to_event`` (jump to date): the room event closest to a time, in one direction.

Candidates are the room's timeline events at or after (``f``) or at or before (``b``) the time,
nearest first; the first one the asker may see wins (a user's history visibility, or what a
server's users could see, for the federation endpoint). The walk is bounded, so a room whose
nearby history is all hidden answers 404 rather than scanning everything.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from homeserver.errors import invalid_param, not_found
from homeserver.handlers.rooms.room_state import RoomStateHandler
from homeserver.handlers.rooms.visibility import filter_events_for_client
from homeserver.server import Server
from storage.stores.events import EventStore, StoredEvent

CHUNK = 50
MAX_LOOKED_AT = 1000
Visible = Callable[[Sequence[StoredEvent]], Awaitable[Sequence[str]]]


def parse_direction(direction: str) -> bool:
    """True for forwards."""
    if direction not in ("f", "b"):
        raise invalid_param("dir must be f or b")
    return direction == "f"


class TimestampLookup:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.events = hs.get(EventStore)
        self.state = hs.get(RoomStateHandler)

    async def for_client(self, user_id: str, room_id: str, ts: int, forwards: bool) -> dict[str, Any]:
        await self.state.check_can_read(room_id, user_id)

        async def visible(events: Sequence[StoredEvent]) -> list[str]:
            return [s.event_id for s in await filter_events_for_client(self.hs, user_id, events)]

        return await self.closest(room_id, ts, forwards, visible)

    async def closest(self, room_id: str, ts: int, forwards: bool, visible: Visible) -> dict[str, Any]:
        """``{event_id, origin_server_ts}`` of the nearest visible event; 404 when there is none."""
        for skip in range(0, MAX_LOOKED_AT, CHUNK):
            candidates = await self.events.get_room_events_near_ts(room_id, ts, forwards, CHUNK, skip)
            seen = set(await visible(candidates))
            for stored in candidates:
                if stored.event_id in seen:
                    return {"event_id": stored.event_id, "origin_server_ts": stored.event.origin_server_ts}
            if len(candidates) < CHUNK:
                break
        raise not_found(f"No event found {'after' if forwards else 'before'} {ts} in this room")
