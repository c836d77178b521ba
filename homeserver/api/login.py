"""``/login``, ``/refresh``: password login and refresh-token rotation."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.errors import MatrixError, bad_json
from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.accounts.devices import MAX_DEVICE_ID_LENGTH, MAX_DISPLAY_NAME_LENGTH
from homeserver.handlers.accounts.login import LoginHandler, PasswordLogin
from homeserver.handlers.accounts.login_tokens import TOKEN_LOGIN, LoginTokenHandler
from homeserver.handlers.validation import check_storable_text
from homeserver.http.auth import client_ip, get_user_by_req
from homeserver.http.request import optional, parse_json_object, require
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)

PASSWORD = "m.login.password"


def parse_device_fields(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """(device_id, initial_device_display_name) from a login or registration body."""
    device_id = optional(body, "device_id", str, "a string") or None
    if device_id is not None and len(device_id) > MAX_DEVICE_ID_LENGTH:
        raise bad_json(f"device_id may not be longer than {MAX_DEVICE_ID_LENGTH} characters")
    display_name = optional(body, "initial_device_display_name", str, "a string")
    check_storable_text("device_id", device_id)
    check_storable_text("initial_device_display_name", display_name)
    if display_name is not None and len(display_name) > MAX_DISPLAY_NAME_LENGTH:
        raise bad_json(f"initial_device_display_name may not be longer than {MAX_DISPLAY_NAME_LENGTH} characters")
    return device_id, display_name


def register_routes(router: Router, hs: Server) -> None:
    max_body = hs.config.max_request_body_size

    login_tokens = hs.get(LoginTokenHandler)

    async def login_flows(request: Request) -> tuple[int, dict[str, Any]]:
        flows: list[dict[str, Any]] = [{"type": PASSWORD}]
        if login_tokens.enabled:
            # How a client that is not signed in learns it may offer "sign in with another device".
            flows.append({"type": TOKEN_LOGIN, "get_login_token": True})
        return 200, {"flows": flows}

    async def login(request: Request) -> tuple[int, dict[str, Any]]:
        body = parse_json_object(request, max_body)
        kind = require(body, "type", str, "a string")
        if kind not in (PASSWORD, TOKEN_LOGIN):
            raise MatrixError(400, "M_UNKNOWN", "Unknown login type")
        device_id, display_name = parse_device_fields(body)
        want_refresh = optional(body, "refresh_token", bool, "a boolean", False)
        if kind == TOKEN_LOGIN:
            result = await login_tokens.login_with_token(body.get("token"), client_ip(request), device_id,
                                                         display_name, want_refresh)
        else:
            result = await hs.get(PasswordLogin).login_with_password(
                body, client_ip(request), device_id=device_id, display_name=display_name,
                want_refresh=want_refresh)
        return 200, result.to_json(hs.server_name)

    async def get_login_token(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth))
        body = parse_json_object(request, max_body, allow_empty=True)
        return 200, await login_tokens.get_token(requester, body)

    async def refresh(request: Request) -> tuple[int, dict[str, Any]]:
        body = parse_json_object(request, max_body)
        token = require(body, "refresh_token", str, "a string")
        result = await hs.get(LoginHandler).refresh(token)
        return 200, {"access_token": result.access_token, "refresh_token": result.refresh_token,
                     "expires_in_ms": result.expires_in_ms}

    router.add("GET", client_paths("/login"), login_flows)
    router.add("POST", client_paths("/login"), login)
    if login_tokens.enabled:
        # Off, there is no route at all (as in Synapse): 404 M_UNRECOGNIZED like any unknown path.
        router.add("POST", ["/_matrix/client/v1/login/get_token",
                            "/_matrix/client/unstable/org.matrix.msc3882/login/get_token"], get_login_token)
    router.add("POST", client_paths("/refresh") + ["/_matrix/client/v1/refresh"], refresh)
