"""``/account/...``: whoami, password change, deactivation, and 3PID stubs."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.handlers.auth import Auth
from homeserver.http.router import Router, client_paths

RESOURCES = ("client",)


def register_routes(router: Router, hs: Any) -> None:
    async def whoami(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await hs.get(Auth).get_user_by_req(request, allow_guest=True)
        body: dict[str, Any] = {"user_id": requester.user_id, "is_guest": requester.is_guest}
        if requester.device_id is not None:
            body["device_id"] = requester.device_id
        return 200, body

    router.add("GET", client_paths("/account/whoami"), whoami)
