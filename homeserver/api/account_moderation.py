"""``/_matrix/client/v1/admin/lock/{userId}`` and ``/admin/suspend/{userId}`` (GET and PUT), for server admins."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.api.admin_auth import require_admin
from homeserver.handlers.accounts.restrictions import AccountRestrictions
from homeserver.http.request import parse_json_object, require
from homeserver.http.router import Router
from homeserver.server import Server

RESOURCES = ("client",)
ACTIONS = {"lock": "locked", "suspend": "suspended"}


def register_routes(router: Router, hs: Server) -> None:
    max_body = hs.config.max_request_body_size

    def handlers(action: str) -> tuple[Any, Any]:
        async def get(request: Request, user_id: str) -> tuple[int, dict[str, Any]]:
            admin = await require_admin(hs, request)
            return 200, await hs.get(AccountRestrictions).get(admin.user_id, action, user_id)

        async def put(request: Request, user_id: str) -> tuple[int, dict[str, Any]]:
            admin = await require_admin(hs, request)
            value = require(parse_json_object(request, max_body), ACTIONS[action], bool, "a boolean")
            return 200, await hs.get(AccountRestrictions).set(admin.user_id, action, user_id, value)

        return get, put

    for action in ACTIONS:
        get, put = handlers(action)
        router.add("GET", f"/_matrix/client/v1/admin/{action}/{{user_id}}", get)
        router.add("PUT", f"/_matrix/client/v1/admin/{action}/{{user_id}}", put)
