"""``/logout`` and ``/logout/all``."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.accounts.login import LoginHandler
from homeserver.http.auth import get_user_by_req
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)


def register_routes(router: Router, hs: Server) -> None:
    async def logout(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth), allow_guest=True, allow_expired=True)
        await hs.get(LoginHandler).logout(requester.user_id, requester.device_id, requester.access_token_id)
        return 200, {}

    async def logout_all(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth), allow_guest=True, allow_expired=True)
        await hs.get(LoginHandler).logout_all(requester.user_id)
        return 200, {}

    router.add("POST", client_paths("/logout"), logout)
    router.add("POST", client_paths("/logout/all"), logout_all)
