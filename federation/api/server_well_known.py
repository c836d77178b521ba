"""``GET /.well-known/matrix/server``: where other servers should send federation traffic.

Served when ``serve_server_wellknown`` is true, on client and federation listeners.
``m.server`` is public_baseurl's host and port when public_baseurl is set (a reverse
proxy there forwards federation too), else the server name's host with its port or
443 (Synapse's answer: https://<server_name>/ evidently reaches us).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from twisted.web.server import Request

from homeserver.config.names import split_server_name
from homeserver.errors import not_found
from homeserver.http.router import Router
from homeserver.server import Server

RESOURCES = ("client", "federation")


def delegated_server(config: Any) -> str:
    if config.public_baseurl:
        parts = urlsplit(config.public_baseurl)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
        return f"{host}:{port}"
    host, port = split_server_name(config.server_name)
    return f"{host}:{port or 443}"


def register_routes(router: Router, hs: Server) -> None:
    config = hs.config
    body = {"m.server": delegated_server(config)}

    async def server(request: Request) -> tuple[int, dict[str, Any]]:
        if not config.serve_server_wellknown:
            raise not_found("Server discovery is not served here (set serve_server_wellknown)")
        request.setHeader(b"Cache-Control", b"max-age=86400")
        return 200, body

    router.add("GET", "/.well-known/matrix/server", server)
