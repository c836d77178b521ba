"""POST /rooms/{roomId}/read_markers: m.fully_read plus m.read / m.read.private receipts."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.ephemeral.receipts import RECEIPT_TYPES, ReceiptHandler
from homeserver.handlers.rooms.room_state import check_room_id
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import optional, parse_json_object
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)
MAX_BODY = 4096


def register_routes(router: Router, hs: Server) -> None:
    async def read_markers(request: Request, room_id: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, hs.get(Auth))
        check_room_id(room_id)
        body = parse_json_object(request, MAX_BODY)
        markers = {}
        for receipt_type in RECEIPT_TYPES:
            event_id = optional(body, receipt_type, str, "an event ID")
            if event_id is not None:
                markers[receipt_type] = event_id
        await hs.get(ReceiptHandler).set_read_markers(requester.user_id, room_id, markers)
        return 200, {}

    router.add("POST", client_paths("/rooms/{room_id}/read_markers"), read_markers)
