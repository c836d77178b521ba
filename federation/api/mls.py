"""``/_matrix/federation/unstable/org.vignette.mls/...``: the MLS DS for other servers (docs/mls.md).

``PUT commit/{roomId}``: a server forwards its user's commit to the room's DS.
``GET commits/{roomId}?from_epoch=N``: a server in the room pulls the log it lacks.
"""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from federation.transport.auth import FederationAuth
from homeserver.handlers.mls.federated import MlsFederation
from homeserver.handlers.rooms.room_state import check_room_id
from homeserver.http.request import query_int
from homeserver.http.router import Router
from homeserver.server import Server

RESOURCES = ("federation",)
PREFIX = "/_matrix/federation/unstable/org.vignette.mls"
#: JSON around three base64 bodies and the forwarding fields.
JSON_OVERHEAD = 64 * 1024


def register_routes(router: Router, hs: Server) -> None:
    largest = (int(hs.config.mls_max_message_size) * 4 + 2) // 3 + 2
    max_body = 3 * largest + JSON_OVERHEAD

    async def commit(request: Request, room_id: str) -> tuple[int, Any]:
        origin, body = await hs.get(FederationAuth).authenticate(request, max_body=max_body)
        check_room_id(room_id)
        return 200, {"epoch": await hs.get(MlsFederation).federated_commit(origin, room_id, body)}

    async def commits(request: Request, room_id: str) -> tuple[int, Any]:
        origin, _ = await hs.get(FederationAuth).authenticate(request)
        check_room_id(room_id)
        from_epoch = query_int(request, "from_epoch", 0, minimum=0)
        return 200, await hs.get(MlsFederation).serve_commits(origin, room_id, from_epoch)

    router.add("PUT", PREFIX + "/commit/{room_id}", commit)
    router.add("GET", PREFIX + "/commits/{room_id}", commits)
