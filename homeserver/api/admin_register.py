"""``/_synapse/admin/v1/register`` (shared secret) and ``.../registration_tokens``.

The paths are Synapse's so operators' tools (register_new_matrix_user, admin
scripts) work unchanged.
"""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.api.admin_auth import ADMIN_V1, require_admin
from homeserver.errors import bad_json, invalid_param
from homeserver.handlers.accounts.admin import RegistrationTokenAdmin, SharedSecretRegistration
from homeserver.http.request import optional, parse_json_object, query_str, require
from homeserver.http.router import Router
from homeserver.server import Server

RESOURCES = ("client",)


def register_routes(router: Router, hs: Server) -> None:
    max_body = hs.config.max_request_body_size

    async def get_nonce(request: Request) -> tuple[int, dict[str, Any]]:
        return 200, {"nonce": hs.get(SharedSecretRegistration).new_nonce()}

    async def register(request: Request) -> tuple[int, dict[str, Any]]:
        body = parse_json_object(request, max_body)
        result = await hs.get(SharedSecretRegistration).register(
            nonce=require(body, "nonce", str, "a string"),
            username=require(body, "username", str, "a string"),
            password=require(body, "password", str, "a string"),
            admin=optional(body, "admin", bool, "a boolean", False),
            mac=require(body, "mac", str, "a string"),
            displayname=optional(body, "displayname", str, "a string"),
            user_type=optional(body, "user_type", str, "a string"),
        )
        return 200, result

    async def admin_tokens(request: Request) -> RegistrationTokenAdmin:
        await require_admin(hs, request)
        return hs.get(RegistrationTokenAdmin)

    async def new_token(request: Request) -> tuple[int, dict[str, Any]]:
        tokens = await admin_tokens(request)
        body = parse_json_object(request, max_body, allow_empty=True)
        length = optional(body, "length", int, "an integer", 16)
        record = await tokens.create(
            token=optional(body, "token", str, "a string"),
            uses_allowed=optional(body, "uses_allowed", int, "an integer or null"),
            expiry_ms=optional(body, "expiry_time", int, "an integer or null"),
            length=length,
        )
        return 200, record.to_json()

    async def list_tokens(request: Request) -> tuple[int, dict[str, Any]]:
        tokens = await admin_tokens(request)
        valid = query_str(request, "valid")
        if valid not in (None, "true", "false"):
            raise invalid_param("valid must be true or false")
        listed = await tokens.list(None if valid is None else valid == "true")
        return 200, {"registration_tokens": [record.to_json() for record in listed]}

    async def update_token(request: Request, token: str) -> tuple[int, dict[str, Any]]:
        tokens = await admin_tokens(request)
        body = parse_json_object(request, max_body, allow_empty=True)
        changes: dict[str, int | None] = {}
        for name in ("uses_allowed", "expiry_time"):
            if name in body:
                value = body[name]
                if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                    raise bad_json(f"{name} must be an integer or null")
                changes[name] = value
        return 200, (await tokens.update(token, changes)).to_json()

    async def get_token(request: Request, token: str) -> tuple[int, dict[str, Any]]:
        tokens = await admin_tokens(request)
        return 200, (await tokens.get(token)).to_json()

    async def delete_token(request: Request, token: str) -> tuple[int, dict[str, Any]]:
        tokens = await admin_tokens(request)
        await tokens.delete(token)
        return 200, {}

    router.add("GET", f"{ADMIN_V1}/register", get_nonce)
    router.add("POST", f"{ADMIN_V1}/register", register)
    router.add("POST", f"{ADMIN_V1}/registration_tokens/new", new_token)
    router.add("GET", f"{ADMIN_V1}/registration_tokens", list_tokens)
    router.add("GET", f"{ADMIN_V1}/registration_tokens/{{token}}", get_token)
    router.add("DELETE", f"{ADMIN_V1}/registration_tokens/{{token}}", delete_token)
    router.add("PUT", f"{ADMIN_V1}/registration_tokens/{{token}}", update_token)
