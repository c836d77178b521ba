"""``/_matrix/client/v1/rooms/{roomId}/relations/...`` and ``/threads``."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.api.room_history import direction_param
from homeserver.api.rooms import path_text
from homeserver.errors import invalid_param, not_found
from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.rooms.relations import RelationsHandler
from homeserver.handlers.rooms.room_state import check_room_id
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import query_int, query_str
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)
V1 = ("/_matrix/client/v1",)


def register_routes(router: Router, hs: Server) -> None:
    auth = hs.get(Auth)

    async def relations(request: Request, room_id: str, event_id: str, rel_type: str | None = None,
                        event_type: str | None = None) -> tuple[int, Any]:
        requester = await get_user_by_req(request, auth, allow_guest=True)
        check_room_id(room_id)
        limit = query_int(request, "limit", 50, minimum=0, maximum=1000)
        direction = direction_param(request, "b")
        path_text(event_id, rel_type, event_type)
        if not event_id.startswith("$"):
            raise not_found("Event not found")
        return 200, await hs.get(RelationsHandler).get_relations(
            requester, room_id, event_id, rel_type, event_type, query_str(request, "from"),
            query_str(request, "to"), direction, limit or 1)

    async def threads(request: Request, room_id: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, auth, allow_guest=True)
        check_room_id(room_id)
        include = query_str(request, "include", "all")
        if include not in ("all", "participated"):
            raise invalid_param("include must be 'all' or 'participated'")
        limit = query_int(request, "limit", 50, minimum=0, maximum=1000)
        return 200, await hs.get(RelationsHandler).get_threads(
            requester, room_id, include, query_str(request, "from"), limit or 1)

    base = "/rooms/{room_id}/relations/{event_id}"
    router.add("GET", client_paths(base, V1), relations)
    router.add("GET", client_paths(base + "/{rel_type}", V1), relations)
    router.add("GET", client_paths(base + "/{rel_type}/{event_type}", V1), relations)
    router.add("GET", client_paths("/rooms/{room_id}/threads", V1), threads)
