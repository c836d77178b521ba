"""Synapse's room admin API (``/_synapse/admin/v1`` and ``/v2``), server admins only.

Rooms: list and search, details, members, state, forward extremities, block, delete (v1
answers when done; v2 answers with a ``delete_id`` whose status can be polled), and
history purges (a ``purge_id`` to poll).
"""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.api.admin_auth import ADMIN_V1, require_admin
from homeserver.errors import invalid_param
from homeserver.events.identifiers import is_valid_user_id
from homeserver.handlers.admin.history_purge import HistoryPurgeHandler
from homeserver.handlers.admin.room_admin import RoomAdminHandler
from homeserver.handlers.admin.room_deletion import (
    DEFAULT_MESSAGE,
    DEFAULT_ROOM_NAME,
    DeleteRequest,
    RoomDeletionHandler,
)
from homeserver.handlers.admin.rooms import ORDER_BY, AdminRoomsHandler, RoomQuery
from homeserver.http.request import optional, parse_json_object, query_int, query_str, require
from homeserver.http.router import Router
from homeserver.server import Server

RESOURCES = ("client",)
ADMIN_V2 = "/_synapse/admin/v2"
DEFAULT_PAGE = 100


def room_query(request: Request) -> RoomQuery:
    order_by = query_str(request, "order_by", "name") or "name"
    if order_by not in ORDER_BY:
        raise invalid_param(f"order_by must be one of {', '.join(ORDER_BY)}")
    direction = query_str(request, "dir", "f")
    if direction not in ("f", "b"):
        raise invalid_param("dir must be 'f' or 'b'")
    return RoomQuery(offset=query_int(request, "from", 0, minimum=0, maximum=2**62),
                     limit=query_int(request, "limit", DEFAULT_PAGE, minimum=0, maximum=10_000),
                     order_by=order_by, backwards=direction == "b", search_term=query_str(request, "search_term"))


def delete_request(body: dict[str, Any], room_id: str, requester: str) -> DeleteRequest:
    new_owner = optional(body, "new_room_user_id", str, "a user ID")
    if new_owner is not None and not is_valid_user_id(new_owner):
        raise invalid_param("new_room_user_id must be a user ID")
    return DeleteRequest(room_id=room_id, requester=requester,
                         block=optional(body, "block", bool, "a boolean", False),
                         purge=optional(body, "purge", bool, "a boolean", True),
                         force_purge=optional(body, "force_purge", bool, "a boolean", False),
                         new_room_user_id=new_owner,
                         room_name=optional(body, "room_name", str, "a string", DEFAULT_ROOM_NAME),
                         message=optional(body, "message", str, "a string", DEFAULT_MESSAGE))


def register_routes(router: Router, hs: Server) -> None:
    max_body = hs.config.max_request_body_size

    def rooms() -> AdminRoomsHandler:
        return hs.get(AdminRoomsHandler)

    async def list_rooms(request: Request) -> tuple[int, Any]:
        await require_admin(hs, request)
        return 200, await rooms().list_rooms(room_query(request))

    async def details(request: Request, room_id: str) -> tuple[int, Any]:
        await require_admin(hs, request)
        return 200, await rooms().details(room_id)

    async def members(request: Request, room_id: str) -> tuple[int, Any]:
        await require_admin(hs, request)
        return 200, await rooms().members(room_id)

    async def state(request: Request, room_id: str) -> tuple[int, Any]:
        await require_admin(hs, request)
        return 200, await rooms().current_state(room_id)

    async def extremities(request: Request, room_id: str) -> tuple[int, Any]:
        await require_admin(hs, request)
        return 200, await rooms().forward_extremities(room_id)

    async def delete_extremities(request: Request, room_id: str) -> tuple[int, Any]:
        await require_admin(hs, request)
        return 200, await rooms().delete_forward_extremities(room_id)

    async def get_block(request: Request, room_id: str) -> tuple[int, Any]:
        await require_admin(hs, request)
        return 200, await rooms().block_status(room_id)

    async def put_block(request: Request, room_id: str) -> tuple[int, Any]:
        admin = await require_admin(hs, request)
        block = require(parse_json_object(request, max_body), "block", bool, "a boolean")
        return 200, await rooms().set_blocked(room_id, admin.user_id, block)

    async def delete_v1(request: Request, room_id: str) -> tuple[int, Any]:
        admin = await require_admin(hs, request)
        body = parse_json_object(request, max_body, allow_empty=True)
        return 200, await hs.get(RoomDeletionHandler).delete_now(delete_request(body, room_id, admin.user_id))

    async def delete_v2(request: Request, room_id: str) -> tuple[int, Any]:
        admin = await require_admin(hs, request)
        body = parse_json_object(request, max_body, allow_empty=True)
        delete_id = await hs.get(RoomDeletionHandler).start(delete_request(body, room_id, admin.user_id))
        return 200, {"delete_id": delete_id}

    async def room_delete_status(request: Request, room_id: str) -> tuple[int, Any]:
        await require_admin(hs, request)
        return 200, hs.get(RoomDeletionHandler).statuses_for_room(room_id)

    async def delete_status(request: Request, delete_id: str) -> tuple[int, Any]:
        await require_admin(hs, request)
        return 200, hs.get(RoomDeletionHandler).status(delete_id)

    async def purge_history(request: Request, room_id: str, event_id: str | None = None) -> tuple[int, Any]:
        await require_admin(hs, request)
        body = parse_json_object(request, max_body, allow_empty=True)
        up_to_event = event_id or optional(body, "purge_up_to_event_id", str, "an event ID")
        up_to_ts = optional(body, "purge_up_to_ts", int, "an integer")
        purge_id = await hs.get(HistoryPurgeHandler).start(
            room_id, up_to_event, up_to_ts, optional(body, "delete_local_events", bool, "a boolean", False))
        return 200, {"purge_id": purge_id}

    async def purge_status(request: Request, purge_id: str) -> tuple[int, Any]:
        await require_admin(hs, request)
        return 200, hs.get(HistoryPurgeHandler).status(purge_id)

    async def make_room_admin(request: Request, room_id: str) -> tuple[int, Any]:
        await require_admin(hs, request)
        user_id = require(parse_json_object(request, max_body), "user_id", str, "a user ID")
        await hs.get(RoomAdminHandler).make_room_admin(room_id, user_id)
        return 200, {}

    router.add("GET", [ADMIN_V1 + "/rooms", ADMIN_V2 + "/rooms"], list_rooms)
    router.add("POST", ADMIN_V1 + "/rooms/{room_id}/make_room_admin", make_room_admin)
    router.add("POST", [ADMIN_V1 + "/purge_history/{room_id}", ADMIN_V1 + "/purge_history/{room_id}/{event_id}"],
               purge_history)
    router.add("GET", ADMIN_V1 + "/purge_history_status/{purge_id}", purge_status)
    router.add("GET", ADMIN_V1 + "/rooms/{room_id}", details)
    router.add("GET", ADMIN_V1 + "/rooms/{room_id}/members", members)
    router.add("GET", ADMIN_V1 + "/rooms/{room_id}/state", state)
    router.add("GET", ADMIN_V1 + "/rooms/{room_id}/forward_extremities", extremities)
    router.add("DELETE", ADMIN_V1 + "/rooms/{room_id}/forward_extremities", delete_extremities)
    router.add("GET", ADMIN_V1 + "/rooms/{room_id}/block", get_block)
    router.add("PUT", ADMIN_V1 + "/rooms/{room_id}/block", put_block)
    router.add("DELETE", ADMIN_V1 + "/rooms/{room_id}", delete_v1)
    router.add("DELETE", ADMIN_V2 + "/rooms/{room_id}", delete_v2)
    router.add("GET", ADMIN_V2 + "/rooms/{room_id}/delete_status", room_delete_status)
    router.add("GET", ADMIN_V2 + "/rooms/delete_status/{delete_id}", delete_status)
