"""``GET /_matrix/federation/v1/version``: which implementation answers (unauthenticated)."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from twisted.web.server import Request

from homeserver.http.router import Router
from homeserver.server import Server

RESOURCES = ("federation",)


def _version() -> str:
    try:
        return metadata.version("vignette")
    except metadata.PackageNotFoundError:
        return "0.1.0"


def register_routes(router: Router, hs: Server) -> None:
    body = {"server": {"name": "Vignette", "version": _version()}}

    async def version(request: Request) -> tuple[int, Any]:
        return 200, body

    router.add("GET", "/_matrix/federation/v1/version", version)
