"""POST /rooms/{roomId}/receipt/{receiptType}/{eventId}."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.ephemeral.receipts import ReceiptHandler
from homeserver.handlers.rooms.room_state import check_room_id
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import optional, parse_json_object
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)
MAX_BODY = 4096


def register_routes(router: Router, hs: Server) -> None:
    async def post_receipt(request: Request, room_id: str, receipt_type: str,
                           event_id: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, hs.get(Auth))
        check_room_id(room_id)
        body = parse_json_object(request, MAX_BODY, allow_empty=True)
        thread_id = optional(body, "thread_id", str, "a string")
        await hs.get(ReceiptHandler).send_receipt(requester.user_id, room_id, receipt_type,
                                                  event_id, thread_id)
        return 200, {}

    router.add("POST", client_paths("/rooms/{room_id}/receipt/{receipt_type}/{event_id}"), post_receipt)
