"""``GET /_matrix/federation/v1/hierarchy/{roomId}``: a space and its children, for another server
(thin: federation/hierarchy.py)."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from federation.hierarchy import FederationHierarchy
from federation.transport.auth import FederationAuth
from homeserver.http.request import query_bool
from homeserver.http.router import Router
from homeserver.server import Server

RESOURCES = ("federation",)


def register_routes(router: Router, hs: Server) -> None:
    async def hierarchy(request: Request, room_id: str) -> tuple[int, Any]:
        origin, _ = await hs.get(FederationAuth).authenticate(request)
        await hs.get(FederationAuth).check_server_acl(origin, room_id)
        suggested_only = query_bool(request, "suggested_only")
        return 200, await hs.get(FederationHierarchy).hierarchy(origin, room_id, suggested_only)

    router.add("GET", "/_matrix/federation/v1/hierarchy/{room_id}", hierarchy)
