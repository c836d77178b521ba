"""``/thirdparty/*``: bridges' protocols, locations and users. They come from application
services, which this server does not run, so every lookup answers empty (and a named protocol
is unknown: 404, as Synapse answers for a protocol no application service offers)."""

from __future__ import annotations

from typing import Any

from homeserver.errors import not_found
from homeserver.server import Server


class ThirdPartyHandler:
    def __init__(self, hs: Server) -> None:
        self.protocols: dict[str, Any] = {}

    async def get_protocols(self) -> dict[str, Any]:
        return dict(self.protocols)

    async def get_protocol(self, protocol: str) -> dict[str, Any]:
        if protocol not in self.protocols:
            raise not_found(f"Unknown protocol {protocol!r}")
        return dict(self.protocols[protocol])

    async def lookup(self, kind: str, protocol: str | None, fields: dict[str, str]) -> list[Any]:
        """Matching locations or users (``kind``) across protocols, or in one: none."""
        return []
