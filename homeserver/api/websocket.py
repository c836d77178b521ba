"""The WebSocket sync stream's path on the client listener (docs/websocket.md).

It is not a JSON route: ``raw_resources`` hands app.py a Twisted resource to
mount at the path, in front of the JSON router.
"""

from __future__ import annotations

from twisted.web.resource import Resource

from homeserver.http.router import Router
from homeserver.server import Server
from homeserver.websocket.connection import StreamResource

RESOURCES = ("client",)
STREAM_PATH = "/_matrix/client/unstable/org.vignette.ws/stream"


def register_routes(router: Router, hs: Server) -> None:
    """No JSON routes: the stream is mounted by raw_resources."""


def raw_resources(hs: Server) -> dict[str, Resource]:
    return {STREAM_PATH: StreamResource(hs)}
