"""``/account/...``: whoami, password change, deactivation, and 3PID answers.

This server keeps no third-party identifiers (``m.3pid_changes`` is false), so the
3PID endpoints answer the way the spec allows for a server without them.
"""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.api.register import threepid_address
from homeserver.errors import MatrixError, forbidden
from homeserver.handlers.accounts.account import AccountHandler
from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.accounts.uia import PasswordUia
from homeserver.handlers.ratelimit import RateLimiters
from homeserver.http.auth import client_ip, get_user_by_req
from homeserver.http.request import optional, parse_json_object, require
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)

NO_SUPPORT = {"id_server_unbind_result": "no-support"}


def threepid_changes_disabled() -> MatrixError:
    return forbidden("Third-party identifier changes are disabled on this server")


def register_routes(router: Router, hs: Server) -> None:
    max_body = hs.config.max_request_body_size

    async def whoami(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth), allow_guest=True)
        body: dict[str, Any] = {"user_id": requester.user_id, "is_guest": requester.is_guest}
        if requester.device_id is not None:
            body["device_id"] = requester.device_id
        return 200, body

    async def change_password(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth))
        body = parse_json_object(request, max_body)
        new_password = require(body, "new_password", str, "a string")
        logout_devices = optional(body, "logout_devices", bool, "a boolean", True)
        await hs.get(PasswordUia).require_password(body, requester.user_id, "change_password")
        await hs.get(AccountHandler).change_password(requester, new_password, logout_devices)
        return 200, {}

    async def deactivate(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth))
        body = parse_json_object(request, max_body, allow_empty=True)
        optional(body, "erase", bool, "a boolean", False)
        optional(body, "id_server", str, "a string")
        await hs.get(PasswordUia).require_password(body, requester.user_id, "deactivate")
        await hs.get(AccountHandler).deactivate(requester.user_id)
        return 200, NO_SUPPORT

    async def list_threepids(request: Request) -> tuple[int, dict[str, Any]]:
        await get_user_by_req(request, hs.get(Auth))
        return 200, {"threepids": []}

    async def change_threepids(request: Request) -> tuple[int, dict[str, Any]]:
        await get_user_by_req(request, hs.get(Auth))
        parse_json_object(request, max_body)
        raise threepid_changes_disabled()

    async def remove_threepid(request: Request) -> tuple[int, dict[str, Any]]:
        """Deleting or unbinding an identifier we never held: nothing to do, nothing unbound."""
        await get_user_by_req(request, hs.get(Auth))
        body = parse_json_object(request, max_body)
        require(body, "medium", str, "a string")
        require(body, "address", str, "a string")
        optional(body, "id_server", str, "a string")
        return 200, NO_SUPPORT

    def limited_body(request: Request, medium: str) -> None:
        """requestToken bodies count against rc_3pid_validation before any answer."""
        body = parse_json_object(request, max_body)
        hs.get(RateLimiters).check_threepid_request(medium, client_ip(request), threepid_address(medium, body))

    def request_threepid_token(medium: str) -> Any:
        async def handle(request: Request) -> tuple[int, dict[str, Any]]:
            limited_body(request, medium)
            raise MatrixError(403, "M_THREEPID_DENIED", "Third-party identifiers are not supported on this server")

        return handle

    def request_password_reset_token(medium: str) -> Any:
        async def handle(request: Request) -> tuple[int, dict[str, Any]]:
            limited_body(request, medium)
            raise MatrixError(400, "M_THREEPID_NOT_FOUND", "No account is bound to that identifier")

        return handle

    router.add("GET", client_paths("/account/whoami"), whoami)
    router.add("POST", client_paths("/account/password"), change_password)
    router.add("POST", client_paths("/account/deactivate"), deactivate)
    router.add("GET", client_paths("/account/3pid"), list_threepids)
    for suffix in ("/account/3pid", "/account/3pid/add", "/account/3pid/bind"):
        router.add("POST", client_paths(suffix), change_threepids)
    for suffix in ("/account/3pid/delete", "/account/3pid/unbind"):
        router.add("POST", client_paths(suffix), remove_threepid)
    for medium in ("email", "msisdn"):
        router.add("POST", client_paths(f"/account/3pid/{medium}/requestToken"), request_threepid_token(medium))
        router.add("POST", client_paths(f"/account/password/{medium}/requestToken"),
                   request_password_reset_token(medium))
