"""``PUT /sendToDevice/{eventType}/{txnId}``."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.e2ee.e2e_json import require_string
from homeserver.handlers.e2ee.to_device import ToDeviceHandler
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import parse_json_object
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)


def register_routes(router: Router, hs: Server) -> None:
    max_body = hs.config.max_request_body_size

    async def send_to_device(request: Request, event_type: str, txn_id: str) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth), allow_guest=True)
        require_string(event_type, "event type")
        require_string(txn_id, "transaction ID")
        body = parse_json_object(request, max_body)
        await hs.get(ToDeviceHandler).send(requester.user_id, requester.device_id or "", event_type,
                                           txn_id, body)
        return 200, {}

    router.add("PUT", client_paths("/sendToDevice/{event_type}/{txn_id}"), send_to_device)
