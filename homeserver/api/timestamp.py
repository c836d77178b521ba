"""``GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event``: jump to a date."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.rooms.room_state import check_room_id
from homeserver.handlers.rooms.timestamp import TimestampLookup, parse_direction
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import query_int, query_str
from homeserver.http.router import Router
from homeserver.server import Server

RESOURCES = ("client",)
PATHS = ("/_matrix/client/v1/rooms/{room_id}/timestamp_to_event",
         "/_matrix/client/unstable/org.matrix.msc3030/rooms/{room_id}/timestamp_to_event")
MAX_TS = 2**62


def register_routes(router: Router, hs: Server) -> None:
    async def timestamp_to_event(request: Request, room_id: str) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth), allow_guest=True)
        check_room_id(room_id)
        ts = query_int(request, "ts", required=True, minimum=0, maximum=MAX_TS)
        forwards = parse_direction(query_str(request, "dir", required=True))
        return 200, await hs.get(TimestampLookup).for_client(requester.user_id, room_id, ts or 0, forwards)

    router.add("GET", PATHS, timestamp_to_event)
