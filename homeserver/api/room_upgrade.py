"""``POST /rooms/{roomId}/upgrade``: replace a room with one of a newer room version."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.rooms.upgrade import RoomUpgradeHandler, parse_upgrade
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import parse_json_object
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)


def register_routes(router: Router, hs: Server) -> None:
    async def upgrade(request: Request, room_id: str) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth))
        version, creators = parse_upgrade(parse_json_object(request, hs.config.max_request_body_size))
        new_room = await hs.get(RoomUpgradeHandler).upgrade(requester.user_id, room_id, version, creators)
        return 200, {"replacement_room": new_room}

    router.add("POST", client_paths("/rooms/{room_id}/upgrade"), upgrade)
