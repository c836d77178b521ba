"""``POST /search``: server-side full-text search of room events."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.rooms.search import SearchHandler
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import parse_json_object, query_str
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)


def register_routes(router: Router, hs: Server) -> None:
    max_body = hs.config.max_request_body_size

    async def search(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth))
        body = parse_json_object(request, max_body)
        next_batch = query_str(request, "next_batch")
        return 200, await hs.get(SearchHandler).search(requester, body, next_batch)

    router.add("POST", client_paths("/search"), search)
