"""Room aliases (``/directory/room/{alias}``, ``/rooms/{roomId}/aliases``) and directory
visibility (``/directory/list/room/{roomId}``)."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.api.rooms import body_of
from homeserver.errors import bad_json
from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.rooms.directory import DirectoryHandler
from homeserver.handlers.rooms.room_state import check_room_id
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import require
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)


def register_routes(router: Router, hs: Server) -> None:
    auth = hs.get(Auth)

    def directory() -> DirectoryHandler:
        return hs.get(DirectoryHandler)

    async def get_alias(request: Request, alias: str) -> tuple[int, Any]:
        return 200, await directory().resolve_alias(alias)

    async def put_alias(request: Request, alias: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, auth)
        body = body_of(request, hs)
        room_id = require(body, "room_id", str, "a room ID")
        await directory().create_alias(requester.user_id, alias, room_id)
        return 200, {}

    async def delete_alias(request: Request, alias: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, auth)
        await directory().delete_alias(requester, alias)
        return 200, {}

    async def room_aliases(request: Request, room_id: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, auth, allow_guest=True)
        check_room_id(room_id)
        return 200, {"aliases": await directory().get_room_aliases(requester.user_id, room_id)}

    async def get_visibility(request: Request, room_id: str) -> tuple[int, Any]:
        return 200, {"visibility": await directory().get_visibility(room_id)}

    async def put_visibility(request: Request, room_id: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, auth)
        body = body_of(request, hs, allow_empty=True)
        visibility = body.get("visibility", "public")
        if visibility not in ("public", "private"):
            raise bad_json("visibility must be 'public' or 'private'")
        await directory().set_visibility(requester, room_id, visibility)
        return 200, {}

    router.add("GET", client_paths("/directory/room/{alias}"), get_alias)
    router.add("PUT", client_paths("/directory/room/{alias}"), put_alias)
    router.add("DELETE", client_paths("/directory/room/{alias}"), delete_alias)
    router.add("GET", client_paths("/rooms/{room_id}/aliases"), room_aliases)
    router.add("GET", client_paths("/directory/list/room/{room_id}"), get_visibility)
    router.add("PUT", client_paths("/directory/list/room/{room_id}"), put_visibility)
