"""``/.well-known/matrix/client`` and ``/.well-known/matrix/server`` discovery documents."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from twisted.web.server import Request

from homeserver.errors import not_found
from homeserver.http.router import Router

RESOURCES = ("client",)


def register_routes(router: Router, hs: Any) -> None:
    config = hs.config

    async def client(request: Request) -> tuple[int, dict[str, Any]]:
        if not config.public_baseurl:
            raise not_found("No client discovery information configured (set public_baseurl)")
        return 200, {"m.homeserver": {"base_url": config.public_baseurl.rstrip("/")}}

    async def server(request: Request) -> tuple[int, dict[str, Any]]:
        if not config.serve_server_wellknown or not config.public_baseurl:
            raise not_found("Server discovery is not served here (set serve_server_wellknown and public_baseurl)")
        parts = urlsplit(config.public_baseurl)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return 200, {"m.server": f"{parts.hostname}:{port}"}

    router.add("GET", "/.well-known/matrix/client", client)
    router.add("GET", "/.well-known/matrix/server", server)
