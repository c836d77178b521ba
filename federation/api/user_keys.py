"""``/_matrix/federation/v1/user/{keys/query,keys/claim,devices/{userId}}``: our users' E2EE keys
for other servers (signed requests only)."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from federation.transport.auth import FederationAuth
from homeserver.errors import not_json
from homeserver.handlers.e2ee.e2e_keys import E2eKeysHandler, user_devices
from homeserver.http.router import Router
from homeserver.server import Server

RESOURCES = ("federation",)


def _object_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise not_json("The body must be a JSON object")
    return body


def register_routes(router: Router, hs: Server) -> None:
    async def query(request: Request) -> tuple[int, Any]:
        _, body = await hs.get(FederationAuth).authenticate(request)
        return 200, await hs.get(E2eKeysHandler).federation_query(_object_body(body))

    async def claim(request: Request) -> tuple[int, Any]:
        _, body = await hs.get(FederationAuth).authenticate(request)
        return 200, await hs.get(E2eKeysHandler).federation_claim(_object_body(body))

    async def devices(request: Request, user_id: str) -> tuple[int, Any]:
        await hs.get(FederationAuth).authenticate(request)
        return 200, await user_devices(hs, user_id)

    router.add("POST", "/_matrix/federation/v1/user/keys/query", query)
    router.add("POST", "/_matrix/federation/v1/user/keys/claim", claim)
    router.add("GET", "/_matrix/federation/v1/user/devices/{user_id}", devices)
