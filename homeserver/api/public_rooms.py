"""``GET/POST /publicRooms``: the public room directory of this server."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.api.rooms import body_of
from homeserver.errors import bad_json
from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.rooms.directory import DirectoryHandler
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import optional, query_int, query_str
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)


def register_routes(router: Router, hs: Server) -> None:
    async def get_public_rooms(request: Request) -> tuple[int, Any]:
        limit = query_int(request, "limit", None, minimum=0, maximum=500)
        return 200, await hs.get(DirectoryHandler).public_rooms(limit, query_str(request, "since"), None)

    async def post_public_rooms(request: Request) -> tuple[int, Any]:
        await get_user_by_req(request, hs.get(Auth), allow_guest=True)
        body = body_of(request, hs, allow_empty=True)
        limit = optional(body, "limit", int, "an integer")
        if limit is not None and limit < 0:
            raise bad_json("limit must not be negative")
        since = optional(body, "since", str, "a string")
        search_filter = optional(body, "filter", dict, "an object", {})
        term = optional(search_filter, "generic_search_term", str, "a string")
        return 200, await hs.get(DirectoryHandler).public_rooms(limit, since, term)

    router.add("GET", client_paths("/publicRooms"), get_public_rooms)
    router.add("POST", client_paths("/publicRooms"), post_public_rooms)
