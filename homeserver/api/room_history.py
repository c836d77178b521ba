"""``/rooms/{roomId}/event/{eventId}``, ``/context/{eventId}``, ``/messages`` and
``/timestamp_to_event`` (client v1)."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.api.rooms import path_text
from homeserver.errors import invalid_param, not_found
from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.rooms.history import HistoryHandler, parse_room_event_filter
from homeserver.handlers.rooms.room_state import check_room_id
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import parse_json, query_int, query_str
from homeserver.http.resource import RawResponse, encode_json_dropping_unencodable
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)
#: Larger timestamps cannot be compared in SQL (BIGINT); clamped, they mean "the end".
MAX_TS = 2**62


def filter_param(request: Request) -> Any:
    text = query_str(request, "filter")
    if text is None:
        return parse_room_event_filter(None)
    try:
        value = parse_json(text.encode("utf-8"))
    except Exception:
        raise invalid_param("filter must be a JSON object") from None
    if not isinstance(value, dict):
        raise invalid_param("filter must be a JSON object")
    return parse_room_event_filter(value)


def direction_param(request: Request, default: str) -> str:
    direction = query_str(request, "dir", default)
    if direction not in ("b", "f"):
        raise invalid_param("dir must be 'b' or 'f'")
    return direction


def history_body(found: dict[str, Any], what: str) -> RawResponse:
    """A page of history: one stored event that cannot be encoded must not block paging past it."""
    return RawResponse(encode_json_dropping_unencodable(found, what), b"application/json")


def register_routes(router: Router, hs: Server) -> None:
    auth = hs.get(Auth)

    def history() -> HistoryHandler:
        return hs.get(HistoryHandler)

    async def get_event(request: Request, room_id: str, event_id: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, auth, allow_guest=True)
        check_room_id(room_id)
        path_text(event_id)
        if not event_id.startswith("$"):
            raise not_found("Event not found")
        return 200, await history().get_event(requester, room_id, event_id)

    async def context(request: Request, room_id: str, event_id: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, auth, allow_guest=True)
        check_room_id(room_id)
        limit = query_int(request, "limit", 10, minimum=0, maximum=1000)
        room_filter = filter_param(request)
        path_text(event_id)
        if not event_id.startswith("$"):
            raise not_found("Event not found")
        found = await history().get_context(requester, room_id, event_id, limit, room_filter)
        return 200, history_body(found, f"the context of {event_id} for {requester.user_id}")

    async def messages(request: Request, room_id: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, auth, allow_guest=True)
        check_room_id(room_id)
        limit = query_int(request, "limit", 10, minimum=0, maximum=1000)
        direction = direction_param(request, "b")
        room_filter = filter_param(request)
        found = await history().get_messages(
            requester, room_id, query_str(request, "from"), query_str(request, "to"), direction,
            limit, room_filter)
        return 200, history_body(found, f"/messages of {room_id} for {requester.user_id}")

    router.add("GET", client_paths("/rooms/{room_id}/event/{event_id}"), get_event)
    router.add("GET", client_paths("/rooms/{room_id}/context/{event_id}"), context)
    router.add("GET", client_paths("/rooms/{room_id}/messages"), messages)

    async def timestamp_to_event(request: Request, room_id: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, auth, allow_guest=True)
        check_room_id(room_id)
        ts = query_int(request, "ts", 0, minimum=0, maximum=MAX_TS, required=True)
        direction = query_str(request, "dir", required=True)
        if direction not in ("b", "f"):
            raise invalid_param("dir must be 'b' or 'f'")
        return 200, await history().timestamp_to_event(requester, room_id, ts, direction)

    router.add("GET", client_paths("/rooms/{room_id}/timestamp_to_event", ("/_matrix/client/v1",)),
               timestamp_to_event)
