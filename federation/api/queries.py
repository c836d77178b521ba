"""``/_matrix/federation/v1/query/{profile,directory,...}``: signed queries from other servers."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from federation.queries import FederationQueryHandler
from federation.transport.auth import FederationAuth
from homeserver.errors import unrecognized
from homeserver.http.request import query_str
from homeserver.http.router import Router
from homeserver.server import Server

RESOURCES = ("federation",)


def register_routes(router: Router, hs: Server) -> None:
    async def profile(request: Request) -> tuple[int, Any]:
        await hs.get(FederationAuth).authenticate(request)
        user_id = query_str(request, "user_id", required=True)
        field = query_str(request, "field")
        return 200, await hs.get(FederationQueryHandler).profile(user_id, field)

    async def directory(request: Request) -> tuple[int, Any]:
        await hs.get(FederationAuth).authenticate(request)
        alias = query_str(request, "room_alias", required=True)
        return 200, await hs.get(FederationQueryHandler).directory(alias)

    async def other(request: Request, query_type: str) -> tuple[int, Any]:
        await hs.get(FederationAuth).authenticate(request)
        raise unrecognized(404, f"Unknown query type {query_type!r}")

    router.add("GET", "/_matrix/federation/v1/query/profile", profile)
    router.add("GET", "/_matrix/federation/v1/query/directory", directory)
    router.add("GET", "/_matrix/federation/v1/query/{query_type}", other)
