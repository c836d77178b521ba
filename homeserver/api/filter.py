"""POST /user/{userId}/filter and GET /user/{userId}/filter/{filterId}."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.handlers.accounts.auth import Auth
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import parse_json_object
from homeserver.http.router import Router, client_paths
from homeserver.server import Server
from homeserver.sync.filters import FilterHandler

RESOURCES = ("client",)
MAX_FILTER_BODY = 64 * 1024


def register_routes(router: Router, hs: Server) -> None:
    async def create_filter(request: Request, user_id: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, hs.get(Auth))
        body = parse_json_object(request, MAX_FILTER_BODY)
        filter_id = await hs.get(FilterHandler).create(requester.user_id, user_id, body)
        return 200, {"filter_id": filter_id}

    async def get_filter(request: Request, user_id: str, filter_id: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, hs.get(Auth))
        return 200, await hs.get(FilterHandler).get(requester.user_id, user_id, filter_id)

    router.add("POST", client_paths("/user/{user_id}/filter"), create_filter)
    router.add("GET", client_paths("/user/{user_id}/filter/{filter_id}"), get_filter)
