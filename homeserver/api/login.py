"""``/login``, ``/refresh``: password login and refresh-token rotation."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.handlers.auth import client_ip
from homeserver.handlers.login import LoginHandler, PasswordLogin
from homeserver.http.errors import MatrixError
from homeserver.http.request import optional, parse_json_object, require
from homeserver.http.router import Router, client_paths

RESOURCES = ("client",)

PASSWORD = "m.login.password"


def register_routes(router: Router, hs: Any) -> None:
    max_body = hs.config.max_request_body_size

    async def login_flows(request: Request) -> tuple[int, dict[str, Any]]:
        return 200, {"flows": [{"type": PASSWORD}]}

    async def login(request: Request) -> tuple[int, dict[str, Any]]:
        body = parse_json_object(request, max_body)
        kind = require(body, "type", str, "a string")
        if kind != PASSWORD:
            raise MatrixError(400, "M_UNKNOWN", "Unknown login type")
        result = await hs.get(PasswordLogin).login_with_password(
            body,
            client_ip(request),
            device_id=optional(body, "device_id", str, "a string") or None,
            display_name=optional(body, "initial_device_display_name", str, "a string"),
            want_refresh=optional(body, "refresh_token", bool, "a boolean", False),
        )
        return 200, result.to_json(hs.server_name)

    async def refresh(request: Request) -> tuple[int, dict[str, Any]]:
        body = parse_json_object(request, max_body)
        token = require(body, "refresh_token", str, "a string")
        result = await hs.get(LoginHandler).refresh(token)
        return 200, {"access_token": result.access_token, "refresh_token": result.refresh_token,
                     "expires_in_ms": result.expires_in_ms}

    router.add("GET", client_paths("/login"), login_flows)
    router.add("POST", client_paths("/login"), login)
    router.add("POST", client_paths("/refresh") + ["/_matrix/client/v1/refresh"], refresh)
