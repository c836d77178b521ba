"""GET /rooms/{id}/relations/{eventId}[/{relType}[/{eventType}]] and /rooms/{id}/threads.

Tokens are stream tokens (`s<N>`, as Synapse uses for relations); every event returned
passes the history-visibility filter, and so must the parent event.
"""

from __future__ import annotations

from typing import Any

from homeserver.handlers.rooms.event_format import EventFormatter
from homeserver.handlers.rooms.history import HistoryHandler, parse_token
from homeserver.handlers.rooms.room_state import RoomStateHandler
from homeserver.handlers.rooms.visibility import filter_events_for_client
from homeserver.server import Server
from storage.stores.events import EventStore
from storage.stores.relations import RelationsStore

MAX_LIMIT = 1000


class RelationsHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.store = hs.get(RelationsStore)
        self.events = hs.get(EventStore)
        self.history = hs.get(HistoryHandler)
        self.state = hs.get(RoomStateHandler)
        self.formatter = hs.get(EventFormatter)

    async def get_relations(self, requester: Any, room_id: str, event_id: str, rel_type: str | None,
                            event_type: str | None, from_token: str | None, to_token: str | None,
                            direction: str, limit: int) -> dict[str, Any]:
        await self.state.check_can_read(room_id, requester.user_id)
        await self.history.get_visible_event(requester, room_id, event_id)
        limit = min(max(limit, 1), MAX_LIMIT)
        current = await self.events.get_max_stream_position()
        backwards = direction == "b"
        position = parse_token(from_token) if from_token else (current if backwards else 0)
        bound = parse_token(to_token) if to_token else None
        if backwards:
            low, high = (bound if bound is not None else -1), min(position, current)
        else:
            low, high = position, (min(bound, current) if bound is not None else current)
        ids = await self.store.get_relations(room_id, event_id, rel_type, event_type, low, high,
                                             limit + 1, backwards)
        more = len(ids) > limit
        ids = ids[:limit]
        found = await self.events.get_events(ids)
        rows = [found[i] for i in ids if i in found]
        visible = await filter_events_for_client(self.hs, requester.user_id, rows)
        result: dict[str, Any] = {"chunk": await self.formatter.format_events(visible, requester)}
        if more and rows:
            last = rows[-1].stream_ordering
            result["next_batch"] = f"s{last - 1 if backwards else last}"
        if from_token:
            result["prev_batch"] = from_token
        return result

    async def get_threads(self, requester: Any, room_id: str, include: str, from_token: str | None,
                          limit: int) -> dict[str, Any]:
        await self.state.check_can_read(room_id, requester.user_id)
        limit = min(max(limit, 1), MAX_LIMIT)
        before = parse_token(from_token) if from_token else (await self.events.get_max_stream_position()) + 1
        participant = requester.user_id if include == "participated" else None
        roots = await self.store.get_thread_roots(room_id, before, limit + 1, participant)
        more = len(roots) > limit
        roots = roots[:limit]
        found = await self.events.get_events([root for root, _ in roots])
        rows = [found[root] for root, _ in roots if root in found and found[root].event.room_id == room_id]
        visible = await filter_events_for_client(self.hs, requester.user_id, rows)
        result: dict[str, Any] = {"chunk": await self.formatter.format_events(visible, requester)}
        if more and roots:
            result["next_batch"] = f"s{roots[-1][1]}"
        return result
