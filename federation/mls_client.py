"""The federation side of MLS's ``MlsRemoteServers`` hook (homeserver/handlers/mls/federated.py):
forwarding a commit to the group's DS, pulling the DS's commit log, and the persisted commit notice.

Registered on ``MlsRemote`` by homeserver/app.py.
"""

from __future__ import annotations

from typing import Any

from federation.sender.sender import FederationSender
from federation.transport.client import FederationClient, FederationRequestError, federation_path
from homeserver.handlers.mls.federated import COMMIT_EDU, MlsRemoteError, MlsRemoteUnavailable
from homeserver.server import Server

PREFIX = "/_matrix/federation/unstable/org.vignette.mls"
COMMIT_PATH = PREFIX + "/commit/{}"
COMMITS_PATH = PREFIX + "/commits/{}"
#: A page of the log: up to 8 MB of base64 commits (and Welcomes) plus one that went over.
MAX_LOG_RESPONSE_BYTES = 24 * 1024 * 1024
TIMEOUT_S = 30.0


class FederationMlsServers:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self._client = hs.get(FederationClient)

    async def forward_commit(self, ds: str, room_id: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            answer = await self._client.put_json(ds, federation_path(COMMIT_PATH, room_id), body, timeout_s=TIMEOUT_S)
        except FederationRequestError as exc:
            if exc.code is not None and 400 <= exc.code < 500 and isinstance(exc.body, dict) \
                    and isinstance(exc.body.get("errcode"), str):
                raise MlsRemoteError(exc.code, exc.body) from None
            raise MlsRemoteUnavailable(str(exc)) from None
        if not isinstance(answer, dict):
            raise MlsRemoteUnavailable(f"{ds} answered the commit with something not an object")
        return answer

    async def fetch_commits(self, ds: str, room_id: str, from_epoch: int) -> dict[str, Any]:
        try:
            answer = await self._client.get_json(ds, federation_path(COMMITS_PATH, room_id),
                                                 {"from_epoch": from_epoch}, timeout_s=TIMEOUT_S,
                                                 max_response_bytes=MAX_LOG_RESPONSE_BYTES)
        except FederationRequestError as exc:
            raise MlsRemoteUnavailable(str(exc)) from None
        if not isinstance(answer, dict):
            raise MlsRemoteUnavailable(f"{ds} answered the log with something not an object")
        return answer

    async def notify(self, destinations: set[str], room_id: str, epoch: int) -> None:
        sender = self.hs.get(FederationSender)
        for destination in sorted(destinations):
            # Keyed by room: a queued notice is replaced by a newer one (each pull fetches everything missing).
            await sender.send_edu(destination, COMMIT_EDU, {"room_id": room_id, "epoch": epoch}, key=room_id)
