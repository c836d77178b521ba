"""``/.well-known/matrix/client``: where clients find the homeserver.

(``/.well-known/matrix/server`` lives with federation: federation/api/server_well_known.py.)
"""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.errors import not_found
from homeserver.http.router import Router
from homeserver.server import Server

RESOURCES = ("client",)


def register_routes(router: Router, hs: Server) -> None:
    config = hs.config

    async def client(request: Request) -> tuple[int, dict[str, Any]]:
        if not config.public_baseurl:
            raise not_found("No client discovery information configured (set public_baseurl)")
        return 200, {"m.homeserver": {"base_url": config.public_baseurl.rstrip("/")}}

    router.add("GET", "/.well-known/matrix/client", client)
