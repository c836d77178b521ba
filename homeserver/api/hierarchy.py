"""``GET /_matrix/client/v1/rooms/{roomId}/hierarchy``: the rooms of a space, depth-first."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.rooms.hierarchy import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    HierarchyHandler,
    HierarchyRequest,
)
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import query_bool, query_int, query_str
from homeserver.http.router import Router
from homeserver.server import Server

RESOURCES = ("client",)
PATHS = ("/_matrix/client/v1/rooms/{room_id}/hierarchy",
         "/_matrix/client/unstable/org.matrix.msc2946/rooms/{room_id}/hierarchy")


def register_routes(router: Router, hs: Server) -> None:
    async def hierarchy(request: Request, room_id: str) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth), allow_guest=True)
        parsed = HierarchyRequest(
            room_id,
            suggested_only=query_bool(request, "suggested_only"),
            max_depth=query_int(request, "max_depth", default=None, minimum=0),
            limit=query_int(request, "limit", DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT),
            from_token=query_str(request, "from"),
        )
        return 200, await hs.get(HierarchyHandler).get_hierarchy(requester.user_id, parsed)

    router.add("GET", PATHS, hierarchy)
