"""``GET /health``: a liveness probe for load balancers and synctl."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.http.resource import RawResponse
from homeserver.http.router import Router

RESOURCES = ("client", "federation", "keys", "health", "metrics", "media")


def register_routes(router: Router, hs: Any) -> None:
    async def health(request: Request) -> tuple[int, RawResponse]:
        return 200, RawResponse(b"OK", b"text/plain; charset=utf-8")

    router.add("GET", "/health", health)
