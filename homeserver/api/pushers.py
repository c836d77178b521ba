"""``GET /pushers`` and ``POST /pushers/set`` (docs/pushers.md)."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.pushers.pool import PusherPool
from homeserver.handlers.pushers.settings import PusherSettings, parse_pusher_request
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import parse_json_object
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)


def register_routes(router: Router, hs: Server) -> None:
    max_body = hs.config.max_request_body_size

    async def get_pushers(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth))
        pushers = await hs.get(PusherSettings).get_pushers(requester.user_id)
        return 200, {"pushers": [pusher.to_json() for pusher in pushers]}

    async def set_pusher(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth))
        pusher_request = parse_pusher_request(parse_json_object(request, max_body))
        pusher = await hs.get(PusherSettings).set_pusher(
            requester.user_id, requester.device_id, requester.access_token_id, pusher_request)
        hs.get(PusherPool).pusher_changed(pusher)
        return 200, {}

    router.add("GET", client_paths("/pushers"), get_pushers)
    router.add("POST", client_paths("/pushers/set"), set_pusher)
