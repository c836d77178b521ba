"""Synapse's media admin API (``/_synapse/admin/v1``): look up, quarantine, delete, purge the cache.

Every route requires a server admin (403 M_FORBIDDEN otherwise).  Answers have Synapse's
shapes, so its admin tools and documentation apply unchanged.
"""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.api.admin_auth import ADMIN_V1, require_admin
from homeserver.errors import invalid_param
from homeserver.handlers.media.admin import MediaAdmin, local_media_json
from homeserver.http.request import query_bool, query_int
from homeserver.http.router import Router
from homeserver.server import Server

RESOURCES = ("client",)

# A before_ts below this is almost surely seconds, not milliseconds (it is December 1970).
SMALLEST_PLAUSIBLE_TS_MS = 30_000_000_000
DEFAULT_PAGE = 100


def before_ts(request: Request) -> int:
    value = query_int(request, "before_ts", required=True)
    assert value is not None
    if value < 0:
        raise invalid_param("before_ts must be a positive integer")
    if value < SMALLEST_PLAUSIBLE_TS_MS:
        raise invalid_param("before_ts is in 1970: give the timestamp in milliseconds, not seconds")
    return value


def page(request: Request) -> tuple[int, int]:
    offset = query_int(request, "from", default=0, minimum=0)
    limit = query_int(request, "limit", default=DEFAULT_PAGE, minimum=0)
    assert offset is not None and limit is not None
    return offset, limit


def register_routes(router: Router, hs: Server) -> None:
    admin = hs.get(MediaAdmin)

    async def media_info(request: Request, server_name: str, media_id: str) -> tuple[int, Any]:
        await require_admin(hs, request)
        return 200, {"media_info": await admin.media_info(server_name, media_id)}

    async def quarantine(request: Request, server_name: str, media_id: str) -> tuple[int, Any]:
        requester = await require_admin(hs, request)
        await admin.set_quarantined(server_name, media_id, requester.user_id)
        return 200, {}

    async def unquarantine(request: Request, server_name: str, media_id: str) -> tuple[int, Any]:
        await require_admin(hs, request)
        await admin.set_quarantined(server_name, media_id, None)
        return 200, {}

    async def quarantine_room(request: Request, room_id: str) -> tuple[int, Any]:
        requester = await require_admin(hs, request)
        return 200, {"num_quarantined": await admin.quarantine_room(room_id, requester.user_id)}

    async def quarantine_user(request: Request, user_id: str) -> tuple[int, Any]:
        requester = await require_admin(hs, request)
        return 200, {"num_quarantined": await admin.quarantine_user(user_id, requester.user_id)}

    async def delete_one(request: Request, server_name: str, media_id: str) -> tuple[int, Any]:
        await require_admin(hs, request)
        deleted = await admin.delete_one(server_name, media_id)
        return 200, {"deleted_media": deleted, "total": len(deleted)}

    async def delete_unused(request: Request, server_name: str | None = None) -> tuple[int, Any]:
        await require_admin(hs, request)
        if server_name is not None and server_name != hs.server_name:
            raise invalid_param("Can only delete local media")
        size_gt = query_int(request, "size_gt", default=0, minimum=0)
        assert size_gt is not None
        deleted = await admin.delete_unused(before_ts(request), size_gt, query_bool(request, "keep_profiles", True))
        return 200, {"deleted_media": deleted, "total": len(deleted)}

    async def user_media(request: Request, user_id: str) -> tuple[int, Any]:
        await require_admin(hs, request)
        offset, limit = page(request)
        media, total = await admin.user_media(user_id, offset, limit)
        body: dict[str, Any] = {"media": [local_media_json(m) for m in media], "total": total}
        if offset + limit < total:
            body["next_token"] = offset + len(media)
        return 200, body

    async def delete_user_media(request: Request, user_id: str) -> tuple[int, Any]:
        await require_admin(hs, request)
        offset, limit = page(request)
        deleted = await admin.delete_user_media(user_id, offset, limit)
        return 200, {"deleted_media": deleted, "total": len(deleted)}

    async def purge_cache(request: Request) -> tuple[int, Any]:
        await require_admin(hs, request)
        return 200, {"deleted": await admin.purge_remote_cache(before_ts(request))}

    router.add("POST", f"{ADMIN_V1}/media/quarantine/{{server_name}}/{{media_id}}", quarantine)
    router.add("POST", f"{ADMIN_V1}/media/unquarantine/{{server_name}}/{{media_id}}", unquarantine)
    router.add("POST", [f"{ADMIN_V1}/room/{{room_id}}/media/quarantine", f"{ADMIN_V1}/quarantine_media/{{room_id}}"],
               quarantine_room)
    router.add("POST", f"{ADMIN_V1}/user/{{user_id}}/media/quarantine", quarantine_user)
    router.add("POST", [f"{ADMIN_V1}/media/delete", f"{ADMIN_V1}/media/{{server_name}}/delete"], delete_unused)
    router.add("GET", f"{ADMIN_V1}/media/{{server_name}}/{{media_id}}", media_info)
    router.add("DELETE", f"{ADMIN_V1}/media/{{server_name}}/{{media_id}}", delete_one)
    router.add("GET", f"{ADMIN_V1}/users/{{user_id}}/media", user_media)
    router.add("DELETE", f"{ADMIN_V1}/users/{{user_id}}/media", delete_user_media)
    router.add("POST", f"{ADMIN_V1}/purge_media_cache", purge_cache)
