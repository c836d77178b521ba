"""GET/PUT /presence/{userId}/status."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.ephemeral.presence import PresenceHandler
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import optional, parse_json_object, require
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)
MAX_BODY = 8192


def register_routes(router: Router, hs: Server) -> None:
    async def get_status(request: Request, user_id: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, hs.get(Auth))
        return 200, await hs.get(PresenceHandler).get_status(requester.user_id, user_id)

    async def put_status(request: Request, user_id: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, hs.get(Auth))
        body = parse_json_object(request, MAX_BODY)
        state = require(body, "presence", str, "a string")
        status_msg = optional(body, "status_msg", str, "a string")
        await hs.get(PresenceHandler).set_status(requester.user_id, user_id, state, status_msg)
        return 200, {}

    router.add("GET", client_paths("/presence/{user_id}/status"), get_status)
    router.add("PUT", client_paths("/presence/{user_id}/status"), put_status)
