"""``/room_keys/...``: server-side key backup versions and keys."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.errors import not_found
from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.e2ee.e2e_json import require_object
from homeserver.handlers.e2ee.e2e_room_keys import (
    KeySelector,
    RoomKey,
    RoomKeysHandler,
    parse_room_key,
    parse_sessions,
)
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import parse_json_object, query_str
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)


def rooms_json(keys: dict[tuple[str, str], RoomKey]) -> dict[str, Any]:
    rooms: dict[str, Any] = {}
    for (room_id, session_id), key in keys.items():
        rooms.setdefault(room_id, {"sessions": {}})["sessions"][session_id] = key.to_json()
    return rooms


def register_routes(router: Router, hs: Server) -> None:
    max_body = hs.config.max_request_body_size

    def handler() -> RoomKeysHandler:
        return hs.get(RoomKeysHandler)

    async def user_of(request: Request) -> str:
        return (await get_user_by_req(request, hs.get(Auth))).user_id

    def version_param(request: Request) -> str:
        version = query_str(request, "version", required=True)
        assert version is not None
        return version

    async def create_version(request: Request) -> tuple[int, dict[str, Any]]:
        user_id = await user_of(request)
        body = parse_json_object(request, max_body)
        return 200, {"version": await handler().create_version(user_id, body)}

    async def get_latest_version(request: Request) -> tuple[int, dict[str, Any]]:
        return 200, await handler().get_version(await user_of(request), None)

    async def get_version(request: Request, version: str) -> tuple[int, dict[str, Any]]:
        return 200, await handler().get_version(await user_of(request), version)

    async def update_version(request: Request, version: str) -> tuple[int, dict[str, Any]]:
        user_id = await user_of(request)
        body = parse_json_object(request, max_body)
        await handler().update_version(user_id, version, body)
        return 200, {}

    async def delete_latest_version(request: Request) -> tuple[int, dict[str, Any]]:
        await handler().delete_version(await user_of(request), None)
        return 200, {}

    async def delete_version(request: Request, version: str) -> tuple[int, dict[str, Any]]:
        await handler().delete_version(await user_of(request), version)
        return 200, {}

    async def put_all(request: Request) -> tuple[int, dict[str, Any]]:
        user_id = await user_of(request)
        version = version_param(request)
        body = parse_json_object(request, max_body)
        keys: dict[tuple[str, str], RoomKey] = {}
        for room_id, room in require_object(body.get("rooms"), "rooms").items():
            keys.update(parse_sessions(room, room_id))
        return 200, await handler().put_keys(user_id, version, keys)

    async def put_room(request: Request, room_id: str) -> tuple[int, dict[str, Any]]:
        user_id = await user_of(request)
        version = version_param(request)
        body = parse_json_object(request, max_body)
        return 200, await handler().put_keys(user_id, version, parse_sessions(body, room_id))

    async def put_session(request: Request, room_id: str, session_id: str) -> tuple[int, dict[str, Any]]:
        user_id = await user_of(request)
        version = version_param(request)
        key = parse_room_key(parse_json_object(request, max_body), "body")
        return 200, await handler().put_keys(user_id, version, {(room_id, session_id): key})

    async def read(request: Request, selector: KeySelector) -> dict[tuple[str, str], RoomKey]:
        user_id = await user_of(request)
        return await handler().get_keys(user_id, version_param(request), selector)

    async def get_all(request: Request) -> tuple[int, dict[str, Any]]:
        return 200, {"rooms": rooms_json(await read(request, (None, None)))}

    async def get_room(request: Request, room_id: str) -> tuple[int, dict[str, Any]]:
        keys = await read(request, (room_id, None))
        return 200, rooms_json(keys).get(room_id, {"sessions": {}})

    async def get_session(request: Request, room_id: str, session_id: str) -> tuple[int, dict[str, Any]]:
        keys = await read(request, (room_id, session_id))
        key = keys.get((room_id, session_id))
        if key is None:
            raise not_found("No room key found for that session")
        return 200, key.to_json()

    async def delete(request: Request, selector: KeySelector) -> tuple[int, dict[str, Any]]:
        user_id = await user_of(request)
        return 200, await handler().delete_keys(user_id, version_param(request), selector)

    async def delete_all(request: Request) -> tuple[int, dict[str, Any]]:
        return await delete(request, (None, None))

    async def delete_room(request: Request, room_id: str) -> tuple[int, dict[str, Any]]:
        return await delete(request, (room_id, None))

    async def delete_session(request: Request, room_id: str, session_id: str) -> tuple[int, dict[str, Any]]:
        return await delete(request, (room_id, session_id))

    router.add("POST", client_paths("/room_keys/version"), create_version)
    router.add("GET", client_paths("/room_keys/version"), get_latest_version)
    router.add("DELETE", client_paths("/room_keys/version"), delete_latest_version)
    router.add("GET", client_paths("/room_keys/version/{version}"), get_version)
    router.add("PUT", client_paths("/room_keys/version/{version}"), update_version)
    router.add("DELETE", client_paths("/room_keys/version/{version}"), delete_version)
    router.add("PUT", client_paths("/room_keys/keys"), put_all)
    router.add("GET", client_paths("/room_keys/keys"), get_all)
    router.add("DELETE", client_paths("/room_keys/keys"), delete_all)
    router.add("PUT", client_paths("/room_keys/keys/{room_id}"), put_room)
    router.add("GET", client_paths("/room_keys/keys/{room_id}"), get_room)
    router.add("DELETE", client_paths("/room_keys/keys/{room_id}"), delete_room)
    router.add("PUT", client_paths("/room_keys/keys/{room_id}/{session_id}"), put_session)
    router.add("GET", client_paths("/room_keys/keys/{room_id}/{session_id}"), get_session)
    router.add("DELETE", client_paths("/room_keys/keys/{room_id}/{session_id}"), delete_session)
