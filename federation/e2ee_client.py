"""The federation side of E2EE's ``RemoteKeyServers`` hook: signed requests to other servers'
``/user/keys/query``, ``/user/keys/claim`` and ``/user/devices/{userId}``.

Registered on ``RemoteKeys`` by homeserver/app.py. Each failure (no answer in time, an error
status, a body that is not a JSON object) becomes ``RemoteKeysUnavailable``, which the handler
turns into that server's entry under ``failures``.
"""

from __future__ import annotations

from typing import Any

from federation.transport.client import FederationClient, FederationRequestError, federation_path
from homeserver.events.identifiers import server_name_of
from homeserver.handlers.e2ee.remote_keys import RemoteKeysUnavailable
from homeserver.server import Server

QUERY_PATH = "/_matrix/federation/v1/user/keys/query"
CLAIM_PATH = "/_matrix/federation/v1/user/keys/claim"
DEVICES_PATH = "/_matrix/federation/v1/user/devices/{}"
#: A thousand devices with their keys and signatures fit easily.
MAX_KEYS_RESPONSE_BYTES = 8 * 1024 * 1024
RESYNC_TIMEOUT_S = 30.0


class FederationKeyServers:
    def __init__(self, hs: Server) -> None:
        self.client = hs.get(FederationClient)

    async def _call(self, method: str, destination: str, path: str, body: Any, timeout_s: float) -> dict[str, Any]:
        try:
            answer = await self.client.request_json(method, destination, path, json_body=body, timeout_s=timeout_s,
                                                    max_response_bytes=MAX_KEYS_RESPONSE_BYTES)
        except FederationRequestError as exc:
            raise RemoteKeysUnavailable(str(exc)) from None
        if not isinstance(answer, dict):
            raise RemoteKeysUnavailable(f"{destination} answered {path} with something not an object")
        return answer

    async def query_keys(self, destination: str, device_keys: dict[str, list[str]],
                         timeout_s: float) -> dict[str, Any]:
        return await self._call("POST", destination, QUERY_PATH, {"device_keys": device_keys}, timeout_s)

    async def claim_keys(self, destination: str, one_time_keys: dict[str, dict[str, str]],
                         timeout_s: float) -> dict[str, Any]:
        return await self._call("POST", destination, CLAIM_PATH, {"one_time_keys": one_time_keys}, timeout_s)

    async def user_devices(self, user_id: str) -> dict[str, Any]:
        return await self._call("GET", server_name_of(user_id), federation_path(DEVICES_PATH, user_id), None,
                                RESYNC_TIMEOUT_S)
