"""PUT /rooms/{roomId}/typing/{userId}."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.errors import bad_json, forbidden
from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.ephemeral.typing import TypingHandler
from homeserver.handlers.rooms.room_state import check_room_id
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import optional, parse_json_object, require
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)
MAX_BODY = 4096


def parse_typing(body: dict[str, Any]) -> tuple[bool, int | None]:
    typing = require(body, "typing", bool, "a boolean")
    timeout = optional(body, "timeout", int, "an integer (milliseconds)")
    if timeout is not None and timeout < 0:
        raise bad_json("timeout must not be negative")
    return typing, timeout


def register_routes(router: Router, hs: Server) -> None:
    async def set_typing(request: Request, room_id: str, user_id: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, hs.get(Auth))
        check_room_id(room_id)
        if requester.user_id != user_id:
            raise forbidden("Cannot set another user's typing state")
        typing, timeout = parse_typing(parse_json_object(request, MAX_BODY))
        await hs.get(TypingHandler).set_typing(user_id, room_id, typing, timeout,
                                               shadow_banned=requester.shadow_banned)
        return 200, {}

    router.add("PUT", client_paths("/rooms/{room_id}/typing/{user_id}"), set_typing)
