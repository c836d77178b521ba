"""``/user/{userId}/account_data/{type}`` and the per-room variant."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.handlers.accounts.account_data import AccountDataHandler
from homeserver.handlers.accounts.auth import Auth
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import parse_json_object
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)


def register_routes(router: Router, hs: Server) -> None:
    max_body = hs.config.max_request_body_size

    async def put_global(request: Request, user_id: str, data_type: str) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth), allow_guest=True)
        content = parse_json_object(request, max_body)
        await hs.get(AccountDataHandler).put(requester, user_id, None, data_type, content)
        return 200, {}

    async def get_global(request: Request, user_id: str, data_type: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, hs.get(Auth), allow_guest=True)
        return 200, await hs.get(AccountDataHandler).get(requester, user_id, None, data_type)

    async def put_room(request: Request, user_id: str, room_id: str,
                       data_type: str) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth), allow_guest=True)
        content = parse_json_object(request, max_body)
        await hs.get(AccountDataHandler).put(requester, user_id, room_id, data_type, content)
        return 200, {}

    async def get_room(request: Request, user_id: str, room_id: str, data_type: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, hs.get(Auth), allow_guest=True)
        return 200, await hs.get(AccountDataHandler).get(requester, user_id, room_id, data_type)

    router.add("PUT", client_paths("/user/{user_id}/account_data/{data_type}"), put_global)
    router.add("GET", client_paths("/user/{user_id}/account_data/{data_type}"), get_global)
    router.add("PUT", client_paths("/user/{user_id}/rooms/{room_id}/account_data/{data_type}"), put_room)
    router.add("GET", client_paths("/user/{user_id}/rooms/{room_id}/account_data/{data_type}"), get_room)
