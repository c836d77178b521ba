"""``GET /health``: a liveness probe for load balancers and synctl."""

from __future__ import annotations

from twisted.web.server import Request

from homeserver.http.resource import RawResponse
from homeserver.http.router import Router
from homeserver.server import Server

RESOURCES = ("client", "federation", "keys", "health", "metrics", "media")


def register_routes(router: Router, hs: Server) -> None:
    async def health(request: Request) -> tuple[int, RawResponse]:
        return 200, RawResponse(b"OK", b"text/plain; charset=utf-8")

    router.add("GET", "/health", health)
