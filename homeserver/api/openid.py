"""``POST /user/{userId}/openid/request_token``: an OpenID token proving the user's identity to a third party."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.accounts.openid import OpenIdHandler
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import parse_json_object
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)


def register_routes(router: Router, hs: Server) -> None:
    max_body = hs.config.max_request_body_size

    async def request_token(request: Request, user_id: str) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth))
        # The spec's body is ``{}``; an empty body is accepted too, anything but an object is not.
        parse_json_object(request, max_body, allow_empty=True)
        return 200, await hs.get(OpenIdHandler).request_token(requester, user_id)

    router.add("POST", client_paths("/user/{user_id}/openid/request_token"), request_token)
