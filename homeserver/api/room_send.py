"""``PUT /rooms/{roomId}/send/{eventType}/{txnId}`` and ``/redact/{eventId}/{txnId}``."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.api.delayed_events import delay_param
from homeserver.api.rooms import body_of, path_text, reason_of
from homeserver.errors import invalid_param
from homeserver.events.identifiers import is_valid_event_id
from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.rooms.delayed_events import DelayedEventsHandler
from homeserver.handlers.rooms.message_send import EventSendHandler
from homeserver.handlers.rooms.room_state import check_room_id
from homeserver.http.auth import get_user_by_req
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)


def register_routes(router: Router, hs: Server) -> None:
    auth = hs.get(Auth)

    async def send(request: Request, room_id: str, event_type: str, txn_id: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, auth, allow_guest=True)
        check_room_id(room_id)
        path_text(event_type, txn_id)
        content = body_of(request, hs)
        delay = delay_param(request)
        if delay is not None:
            delay_id = await hs.get(DelayedEventsHandler).schedule(
                requester, room_id, event_type, None, content, delay, txn_id)
            return 200, {"delay_id": delay_id}
        event_id = await hs.get(EventSendHandler).send_event(requester, room_id, event_type, content,
                                                             txn_id)
        return 200, {"event_id": event_id}

    async def redact(request: Request, room_id: str, event_id: str, txn_id: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, auth)
        check_room_id(room_id)
        path_text(txn_id)
        if not is_valid_event_id(event_id):
            raise invalid_param(f"{event_id!r} is not a valid event ID")
        body = body_of(request, hs, allow_empty=True)
        content: dict[str, Any] = {}
        reason = reason_of(body)
        if reason is not None:
            content["reason"] = reason
        redaction_id = await hs.get(EventSendHandler).send_event(
            requester, room_id, "m.room.redaction", content, txn_id, redacts=event_id)
        return 200, {"event_id": redaction_id}

    router.add("PUT", client_paths("/rooms/{room_id}/send/{event_type}/{txn_id}"), send)
    router.add("PUT", client_paths("/rooms/{room_id}/redact/{event_id}/{txn_id}"), redact)
