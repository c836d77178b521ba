"""``/rooms/{roomId}/state``: read all state, read or set one piece."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.api.delayed_events import delay_param
from homeserver.api.rooms import body_of, path_text
from homeserver.errors import invalid_param
from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.rooms.delayed_events import DelayedEventsHandler
from homeserver.handlers.rooms.event_format import EventFormatter
from homeserver.handlers.rooms.message_send import EventSendHandler
from homeserver.handlers.rooms.room_reads import RoomReadHandler
from homeserver.handlers.rooms.room_state import check_room_id
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import query_str
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)


def register_routes(router: Router, hs: Server) -> None:
    auth = hs.get(Auth)

    async def get_all(request: Request, room_id: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, auth, allow_guest=True)
        check_room_id(room_id)
        return 200, await hs.get(RoomReadHandler).get_state(requester, room_id)

    async def get_one(request: Request, room_id: str, event_type: str,
                      state_key: str = "") -> tuple[int, Any]:
        requester = await get_user_by_req(request, auth, allow_guest=True)
        check_room_id(room_id)
        path_text(event_type, state_key)
        output = query_str(request, "format", "content")
        if output not in ("content", "event"):
            raise invalid_param("format must be 'content' or 'event'")
        stored = await hs.get(RoomReadHandler).get_state_event(requester, room_id, event_type, state_key)
        if output == "event":
            return 200, await hs.get(EventFormatter).format_event(stored, requester)
        return 200, stored.event.content

    async def put_one(request: Request, room_id: str, event_type: str,
                      state_key: str = "") -> tuple[int, Any]:
        requester = await get_user_by_req(request, auth)
        check_room_id(room_id)
        path_text(event_type, state_key)
        content = body_of(request, hs)
        delay = delay_param(request)
        if delay is not None:
            delay_id = await hs.get(DelayedEventsHandler).schedule(
                requester, room_id, event_type, state_key, content, delay)
            return 200, {"delay_id": delay_id}
        event_id = await hs.get(EventSendHandler).send_state(requester, room_id, event_type, state_key,
                                                             content)
        return 200, {"event_id": event_id}

    router.add("GET", client_paths("/rooms/{room_id}/state"), get_all)
    for suffix in ("/rooms/{room_id}/state/{event_type}/{state_key}",
                   "/rooms/{room_id}/state/{event_type}/", "/rooms/{room_id}/state/{event_type}"):
        router.add("GET", client_paths(suffix), get_one)
        router.add("PUT", client_paths(suffix), put_one)
