"""The hook through which E2EE reaches other servers' key APIs.

Handlers may not import federation (tests/test_layering.py), yet remote /keys/query,
/keys/claim and device-list resyncs need signed federation requests. So the handlers ask
``hs.get(RemoteKeys).servers``, a ``RemoteKeyServers`` that homeserver/app.py registers at
start-up with federation's implementation (federation/e2ee_client.py). Without one (a bare
test host), every remote server counts as unreachable.
"""

from __future__ import annotations

from typing import Any, Protocol

from homeserver.server import Server


class RemoteKeysUnavailable(Exception):
    """The remote server did not answer, or answered with an error or nonsense."""


class RemoteKeyServers(Protocol):
    async def query_keys(self, destination: str, device_keys: dict[str, list[str]],
                         timeout_s: float) -> dict[str, Any]:
        """``POST /_matrix/federation/v1/user/keys/query``; RemoteKeysUnavailable on failure."""
        ...

    async def claim_keys(self, destination: str, one_time_keys: dict[str, dict[str, str]],
                         timeout_s: float) -> dict[str, Any]:
        """``POST /_matrix/federation/v1/user/keys/claim``; RemoteKeysUnavailable on failure."""
        ...

    async def user_devices(self, user_id: str) -> dict[str, Any]:
        """``GET /_matrix/federation/v1/user/devices/{userId}``; RemoteKeysUnavailable on failure."""
        ...


class RemoteKeys:
    """Holds the registered implementation (one per process)."""

    def __init__(self, hs: Server) -> None:
        self.servers: RemoteKeyServers | None = None

    def get(self) -> RemoteKeyServers:
        if self.servers is None:
            raise RemoteKeysUnavailable("federation is not set up in this process")
        return self.servers
