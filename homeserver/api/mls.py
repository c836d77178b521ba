"""``/_matrix/client/unstable/org.vignette.mls/...``: the MLS delivery service (docs/mls.md).

The commit body (commit, Welcome and GroupInfo, each up to mls_max_message_size
before base64) is spooled to disk as it arrives rather than held in Twisted's
buffer, then parsed once.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from twisted.web.server import Request

from homeserver.api.keys import require_device
from homeserver.errors import invalid_param, not_json
from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.mls.delivery import MlsDeliveryService
from homeserver.handlers.mls.federated import MlsFederation
from homeserver.handlers.rooms.room_state import check_room_id
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import parse_json, query_int
from homeserver.http.router import Router
from homeserver.http.streaming import SpoolSpec, spooled_body
from homeserver.server import Server

RESOURCES = ("client",)
PREFIX = "/_matrix/client/unstable/org.vignette.mls"
#: JSON around three base64 bodies.
JSON_OVERHEAD = 64 * 1024


def commit_spool(hs: Server) -> SpoolSpec:
    largest = (int(hs.config.mls_max_message_size) * 4 + 2) // 3 + 2
    return SpoolSpec(tempfile.gettempdir(), 3 * largest + JSON_OVERHEAD)


def read_spooled_json(request: Request) -> dict[str, Any]:
    spooled = spooled_body(request)
    try:
        with open(spooled.path, "rb") as body:
            raw = body.read()
    finally:
        os.unlink(spooled.path)
    parsed = parse_json(raw)
    if not isinstance(parsed, dict):
        raise not_json("Content must be a JSON object.")
    return parsed


def register_routes(router: Router, hs: Server) -> None:
    auth = hs.get(Auth)

    def service() -> MlsDeliveryService:
        return hs.get(MlsDeliveryService)

    async def commit(request: Request, room_id: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, auth)
        device_id = require_device(requester)
        check_room_id(room_id)
        body = read_spooled_json(request)
        epoch = await hs.get(MlsFederation).submit_commit(requester.user_id, device_id, room_id, body)
        return 200, {"epoch": epoch}

    async def commits(request: Request, room_id: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, auth)
        check_room_id(room_id)
        from_epoch = query_int(request, "from_epoch", 0, minimum=0)
        limit = query_int(request, "limit", 10, minimum=1)
        return 200, await service().commits_from(requester.user_id, room_id, from_epoch, limit)

    async def welcome(request: Request, room_id: str, epoch: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, auth)
        device_id = require_device(requester)
        check_room_id(room_id)
        if not epoch.isdigit() or len(epoch) > 18:
            raise invalid_param("epoch must be a non-negative integer")
        return 200, await service().welcome(requester.user_id, device_id, room_id, int(epoch))

    async def group_info(request: Request, room_id: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, auth)
        check_room_id(room_id)
        return 200, await service().group_info(requester.user_id, room_id)

    router.add("POST", PREFIX + "/rooms/{room_id}/commit", commit, spool=commit_spool(hs))
    router.add("GET", PREFIX + "/rooms/{room_id}/commits", commits)
    router.add("GET", PREFIX + "/rooms/{room_id}/welcome/{epoch}", welcome)
    router.add("GET", PREFIX + "/rooms/{room_id}/group_info", group_info)
