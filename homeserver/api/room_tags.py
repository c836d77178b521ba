"""``/user/{userId}/rooms/{roomId}/tags``: list, add and remove room tags."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.accounts.room_tags import RoomTagsHandler
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import parse_json_object
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)


def register_routes(router: Router, hs: Server) -> None:
    max_body = hs.config.max_request_body_size

    async def get_tags(request: Request, user_id: str, room_id: str) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth), allow_guest=True)
        return 200, await hs.get(RoomTagsHandler).get_tags(requester, user_id, room_id)

    async def put_tag(request: Request, user_id: str, room_id: str, tag: str) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth), allow_guest=True)
        content = parse_json_object(request, max_body)
        await hs.get(RoomTagsHandler).add_tag(requester, user_id, room_id, tag, content)
        return 200, {}

    async def delete_tag(request: Request, user_id: str, room_id: str, tag: str) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth), allow_guest=True)
        await hs.get(RoomTagsHandler).remove_tag(requester, user_id, room_id, tag)
        return 200, {}

    router.add("GET", client_paths("/user/{user_id}/rooms/{room_id}/tags"), get_tags)
    router.add("PUT", client_paths("/user/{user_id}/rooms/{room_id}/tags/{tag}"), put_tag)
    router.add("DELETE", client_paths("/user/{user_id}/rooms/{room_id}/tags/{tag}"), delete_tag)
