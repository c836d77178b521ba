"""A hook for requests whose writes belong to another process (docs/workers.md).

In a worker, ``homeserver/worker_setup.py`` sets ``forward``: it sends one client API
request to the main process with the client's own access token and returns the JSON
answer (raising the main process's MatrixError).  Transports that accept writes outside
HTTP routes (the WebSocket stream's send, typing and receipt requests) use it; with
nothing set (one process), they call their handlers directly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from homeserver.server import Server

#: forward(access_token, method, path, json_body) -> the JSON answer of a 200.
Forward = Callable[[str, str, str, dict[str, Any]], Awaitable[Any]]


class WriterForwarding:
    def __init__(self, hs: Server) -> None:
        self.forward: Forward | None = None
