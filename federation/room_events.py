"""Serving a room's events to other servers: ``/event``, ``/state``, ``/state_ids``,
``/event_auth``, ``/get_missing_events``, ``/backfill`` and ``/timestamp_to_event``, what a
peer needs to fill its gaps (or to find its way by time).

Every question names a room (``/event`` through the event it asks for): the room's server ACL
must allow the asking server, and that server must have a user joined now (403 otherwise, as
Synapse answers "Host not in room"). Events are then filtered with
``filter_events_for_server``: what the server's users could see.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from typing import Any

from federation.server_visibility import filter_events_for_server, served_pdu, server_in_room
from federation.transport.auth import FederationAuth
from homeserver.errors import forbidden, not_found
from homeserver.handlers.rooms.room_state import RoomStateHandler
from homeserver.server import Server
from storage.stores.events import EventStore, StoredEvent
from storage.stores.room_dag import RoomDagStore
from storage.stores.rooms import RoomStore

#: Most events one /backfill or /get_missing_events answer holds, whatever the limit asked.
MAX_EVENTS_PER_ANSWER = 100
#: Events looked at for /timestamp_to_event (the first the server may see wins).
TIMESTAMP_WINDOW = 50
#: Most events /get_missing_events and /backfill look at while walking back.
MAX_WALK = 2000


class FederationRoomEvents:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.auth = hs.get(FederationAuth)
        self.events = hs.get(EventStore)
        self.dag = hs.get(RoomDagStore)
        self.rooms = hs.get(RoomStore)
        self.state = hs.get(RoomStateHandler)

    async def check_access(self, origin: str, room_id: str) -> None:
        """404 for a room we do not know, 403 for an ACL-denied server or one not in the room."""
        if await self.rooms.get_room_version_id(room_id) is None:
            raise not_found("Unknown room")
        await self.auth.check_server_acl(origin, room_id)
        if not await server_in_room(self.hs, origin, room_id):
            raise forbidden("Host not in room")

    async def _event_in_room(self, room_id: str, event_id: str) -> StoredEvent:
        stored = await self.events.get_event(event_id)
        if stored is None or stored.event.room_id != room_id or stored.rejected:
            raise not_found("Unknown event in this room")
        return stored

    async def timestamp_to_event(self, origin: str, room_id: str, ts: int, forwards: bool) -> dict[str, Any]:
        """The event the server may see closest to ``ts`` in that direction (404 if none)."""
        await self.check_access(origin, room_id)
        found = await self.events.get_room_events_by_timestamp(room_id, ts, forwards, TIMESTAMP_WINDOW)
        for stored in found:  # nearest first; usually the first one is visible
            if await filter_events_for_server(self.hs, origin, [stored], redact=False):
                return {"event_id": stored.event_id, "origin_server_ts": stored.event.origin_server_ts}
        raise not_found("No event found near that time")

    async def get_event(self, origin: str, event_id: str) -> dict[str, Any]:
        stored = await self.events.get_event(event_id)
        if stored is None or stored.rejected:
            raise not_found("Unknown event")
        await self.check_access(origin, stored.event.room_id)
        pdus = await filter_events_for_server(self.hs, origin, [stored], redact=False)
        if not pdus:
            raise not_found("Unknown event")
        return pdus[0]

    async def get_state_ids(self, origin: str, room_id: str, event_id: str) -> tuple[list[str], list[str]]:
        """(state before the event, the auth chain of that state), as event IDs."""
        await self.check_access(origin, room_id)
        stored = await self._event_in_room(room_id, event_id)
        if stored.outlier or stored.state_group is None:
            raise not_found("We do not hold the state at this event")
        state_ids = sorted((await self.state.get_state_ids_before_event(stored)).values())
        auth_ids = await self.dag.get_auth_chain_ids(state_ids)
        return state_ids, sorted(auth_ids - set(state_ids))

    async def get_state(self, origin: str, room_id: str, event_id: str) -> tuple[list[Any], list[Any]]:
        state_ids, auth_ids = await self.get_state_ids(origin, room_id, event_id)
        return await self._pdus(state_ids), await self._pdus(auth_ids)

    async def get_event_auth(self, origin: str, room_id: str, event_id: str) -> list[Any]:
        await self.check_access(origin, room_id)
        stored = await self._event_in_room(room_id, event_id)
        return await self._pdus(sorted(await self.dag.get_auth_chain_ids([stored.event_id])))

    async def get_missing_events(self, origin: str, room_id: str, earliest: Sequence[str],
                                 latest: Sequence[str], limit: int, min_depth: int) -> list[Any]:
        """Events before ``latest`` back to ``earliest`` (neither included), deepest first walked."""
        await self.check_access(origin, room_id)
        limit = max(0, min(limit, MAX_EVENTS_PER_ANSWER))
        stop = set(earliest) | set(latest)
        found = await self._walk_back(room_id, await self._prevs(latest), stop, limit, min_depth)
        found.sort(key=lambda s: (s.depth, s.stream_ordering))
        return await filter_events_for_server(self.hs, origin, found, redact=True)

    async def backfill(self, origin: str, room_id: str, start: Sequence[str], limit: int) -> list[Any]:
        """The ``start`` events and those before them, deepest first, at most ``limit``."""
        await self.check_access(origin, room_id)
        limit = max(0, min(limit, MAX_EVENTS_PER_ANSWER))
        found = await self._walk_back(room_id, list(start), set(), limit, 0)
        return await filter_events_for_server(self.hs, origin, found, redact=True)

    async def _prevs(self, event_ids: Iterable[str]) -> list[str]:
        edges = await self.dag.get_prev_event_ids(list(event_ids))
        return [p for prevs in edges.values() for p in prevs]

    async def _walk_back(self, room_id: str, frontier: list[str], stop: set[str], limit: int,
                         min_depth: int) -> list[StoredEvent]:
        """Breadth by depth through prev_events: the deepest unseen event next."""
        seen: set[str] = set(stop)
        heap: list[tuple[int, str]] = []
        found: list[StoredEvent] = []
        looked = 0

        async def push(ids: Iterable[str]) -> None:
            fresh = [i for i in dict.fromkeys(ids) if i not in seen]
            seen.update(fresh)
            for event_id, stored in (await self.events.get_events(fresh)).items():
                if stored.event.room_id == room_id and not stored.outlier and stored.depth >= min_depth:
                    heapq.heappush(heap, (-stored.depth, event_id))

        await push(frontier)
        while heap and len(found) < limit and looked < MAX_WALK:
            _, event_id = heapq.heappop(heap)
            looked += 1
            stored = await self.events.get_event(event_id)
            if stored is None:
                continue
            if not stored.rejected:
                found.append(stored)
            await push(await self._prevs([event_id]))
        return found

    async def _pdus(self, event_ids: Sequence[str]) -> list[Any]:
        loaded = await self.events.get_events(event_ids)
        return [served_pdu(loaded[i]) for i in event_ids if i in loaded and not loaded[i].rejected]
