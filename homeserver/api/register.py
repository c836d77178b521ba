"""``/register``: account creation, username availability, registration-token validity."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.api.login import parse_device_fields
from homeserver.errors import MatrixError, invalid_param
from homeserver.handlers.accounts.registration import RegisterRequest, RegistrationHandler
from homeserver.handlers.ratelimit import RateLimiters
from homeserver.http.auth import client_ip
from homeserver.http.request import optional, parse_json_object, query_str
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)


def threepid_denied() -> MatrixError:
    return MatrixError(403, "M_THREEPID_DENIED", "Third-party identifiers are not supported on this server")


def threepid_address(medium: str, body: dict[str, Any]) -> object:
    """The identifier a /requestToken body names (rc_3pid_validation counts per address)."""
    if medium == "email":
        return body.get("email")
    country, number = body.get("country"), body.get("phone_number")
    return f"{country} {number}" if isinstance(country, str) and isinstance(number, str) else None


def parse_register_request(body: dict[str, Any]) -> RegisterRequest:
    device_id, display_name = parse_device_fields(body)
    return RegisterRequest(
        username=optional(body, "username", str, "a string"),
        password=optional(body, "password", str, "a string"),
        device_id=device_id,
        initial_device_display_name=display_name,
        inhibit_login=optional(body, "inhibit_login", bool, "a boolean", False),
        refresh_token=optional(body, "refresh_token", bool, "a boolean", False),
    )


def register_routes(router: Router, hs: Server) -> None:
    max_body = hs.config.max_request_body_size

    async def register(request: Request) -> tuple[int, dict[str, Any]]:
        kind = query_str(request, "kind", "user")
        if kind not in ("user", "guest"):
            raise invalid_param("kind must be 'user' or 'guest'")
        body = parse_json_object(request, max_body, allow_empty=True)
        parsed = parse_register_request(body)
        limiter = hs.get(RateLimiters).registration
        address = client_ip(request)
        limiter.ratelimit(address, update=False)
        handler = hs.get(RegistrationHandler)
        if kind == "guest":
            result = await handler.register_guest(parsed)
        else:
            result = await handler.register_client(body, parsed)
        limiter.record_action(address)
        return 200, result

    async def available(request: Request) -> tuple[int, dict[str, Any]]:
        username = query_str(request, "username", required=True)
        assert username is not None
        hs.get(RateLimiters).registration.ratelimit(client_ip(request), update=False)
        await hs.get(RegistrationHandler).check_username(username)
        return 200, {"available": True}

    async def token_validity(request: Request) -> tuple[int, dict[str, Any]]:
        token = query_str(request, "token", required=True)
        assert token is not None
        hs.get(RateLimiters).registration.ratelimit(client_ip(request), update=False)
        return 200, {"valid": await hs.get(RegistrationHandler).is_token_valid(token)}

    def request_token(medium: str) -> Any:
        async def handle(request: Request) -> tuple[int, dict[str, Any]]:
            body = parse_json_object(request, max_body)
            hs.get(RateLimiters).check_threepid_request(medium, client_ip(request), threepid_address(medium, body))
            raise threepid_denied()

        return handle

    router.add("POST", client_paths("/register"), register)
    router.add("GET", client_paths("/register/available"), available)
    router.add("GET", ["/_matrix/client/v1/register/m.login.registration_token/validity"], token_validity)
    for medium in ("email", "msisdn"):
        router.add("POST", client_paths(f"/register/{medium}/requestToken"), request_token(medium))
