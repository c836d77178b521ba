"""``GET /_matrix/federation/v1/timestamp_to_event/{roomId}``: jump to a date for another server."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.web.server import Request

from federation.room_events import FederationRoomEvents
from federation.server_visibility import events_visible_to_server
from federation.transport.auth import FederationAuth
from homeserver.handlers.rooms.room_state import check_room_id
from homeserver.handlers.rooms.timestamp import TimestampLookup, parse_direction
from homeserver.http.request import query_int, query_str
from homeserver.http.router import Router
from homeserver.server import Server
from storage.stores.events import StoredEvent

RESOURCES = ("federation",)
MAX_TS = 2**62


def register_routes(router: Router, hs: Server) -> None:
    async def timestamp_to_event(request: Request, room_id: str) -> tuple[int, Any]:
        origin, _ = await hs.get(FederationAuth).authenticate(request)
        check_room_id(room_id)
        ts = query_int(request, "ts", required=True, minimum=0, maximum=MAX_TS)
        forwards = parse_direction(query_str(request, "dir", required=True))
        await hs.get(FederationRoomEvents).check_access(origin, room_id)

        async def visible(events: Sequence[StoredEvent]) -> list[str]:
            return [stored.event_id for stored in await events_visible_to_server(hs, origin, events)]

        return 200, await hs.get(TimestampLookup).closest(room_id, ts or 0, forwards, visible)

    router.add("GET", "/_matrix/federation/v1/timestamp_to_event/{room_id}", timestamp_to_event)
