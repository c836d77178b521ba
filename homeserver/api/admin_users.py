"""Synapse's user admin API (``/_synapse/admin/v1`` and ``/v2``), server admins only.

Users: list and search, query, create or modify, deactivate (with erase), reset the
password, set or read the admin flag, whois, devices, joined rooms, log in as a user,
media statistics per user, and server notices.
Request and response shapes are Synapse's, so synapse-admin and the admin scripts work.
"""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.api.admin_auth import ADMIN_V1, require_admin
from homeserver.errors import bad_json, invalid_param
from homeserver.handlers.admin.ratelimits import RatelimitOverrides
from homeserver.handlers.admin.server_notices import ServerNoticesHandler
from homeserver.handlers.admin.users import (
    MEDIA_ORDER,
    ORDER_COLUMNS,
    AdminUsersHandler,
    MediaQuery,
    UserChanges,
    UserFilter,
)
from homeserver.http.request import (
    optional,
    parse_json_object,
    query_bool,
    query_int,
    query_str,
    require,
)
from homeserver.http.router import Router
from homeserver.server import Server

RESOURCES = ("client",)
ADMIN_V2 = "/_synapse/admin/v2"
DEFAULT_PAGE = 100
MAX_OFFSET = 2**62


def user_filter(request: Request) -> UserFilter:
    """``GET /v2/users``'s query parameters (Synapse's names)."""
    offset = query_str(request, "from", "0")
    if offset is None or not offset.isdigit() or len(offset) > 18:
        raise invalid_param("from must be a non-negative integer")
    order_by = query_str(request, "order_by", "name")
    if order_by not in ORDER_COLUMNS:
        raise invalid_param(f"order_by must be one of {', '.join(sorted(ORDER_COLUMNS))}")
    direction = query_str(request, "dir", "f")
    if direction not in ("f", "b"):
        raise invalid_param("dir must be 'f' or 'b'")
    admins = query_str(request, "admins")
    if admins not in (None, "true", "false"):
        raise invalid_param("admins must be true or false")
    return UserFilter(
        offset=min(int(offset), MAX_OFFSET), limit=query_int(request, "limit", DEFAULT_PAGE, minimum=0, maximum=1000),
        user_id=query_str(request, "user_id"), name=query_str(request, "name"),
        guests=query_bool(request, "guests", True), deactivated=query_bool(request, "deactivated", False),
        admins=None if admins is None else admins == "true", order_by=order_by or "name",
        descending=direction == "b",
    )


def media_query(request: Request) -> MediaQuery:
    """``GET /v1/statistics/users/media``'s query parameters (Synapse's names)."""
    order_by = query_str(request, "order_by", "user_id") or "user_id"
    if order_by not in MEDIA_ORDER:
        raise invalid_param(f"order_by must be one of {', '.join(sorted(MEDIA_ORDER))}")
    direction = query_str(request, "dir", "f")
    if direction not in ("f", "b"):
        raise invalid_param("dir must be 'f' or 'b'")
    from_ts = query_int(request, "from_ts", 0, minimum=0, maximum=2**62)
    until_ts = query_int(request, "until_ts", 2**62, minimum=0, maximum=2**62)
    if until_ts < from_ts:
        raise invalid_param("until_ts must not be before from_ts")
    return MediaQuery(offset=query_int(request, "from", 0, minimum=0, maximum=2**62),
                      limit=query_int(request, "limit", DEFAULT_PAGE, minimum=0, maximum=1000),
                      from_ts=from_ts, until_ts=until_ts, search_term=query_str(request, "search_term"),
                      order_by=order_by, descending=direction == "b")


def user_changes(body: dict[str, Any]) -> UserChanges:
    if body.get("threepids") or body.get("external_ids"):
        raise invalid_param("threepids and external_ids are not supported")
    return UserChanges(
        password=optional(body, "password", str, "a string"),
        logout_devices=optional(body, "logout_devices", bool, "a boolean", True),
        displayname=optional(body, "displayname", str, "a string"),
        avatar_url=optional(body, "avatar_url", str, "a string"),
        admin=optional(body, "admin", bool, "a boolean"),
        deactivated=optional(body, "deactivated", bool, "a boolean"),
        user_type=optional(body, "user_type", str, "a string"),
    )


def register_routes(router: Router, hs: Server) -> None:
    max_body = hs.config.max_request_body_size

    def users() -> AdminUsersHandler:
        return hs.get(AdminUsersHandler)

    async def list_users(request: Request) -> tuple[int, Any]:
        await require_admin(hs, request)
        return 200, await users().list_users(user_filter(request))

    async def query_user(request: Request, user_id: str) -> tuple[int, Any]:
        await require_admin(hs, request)
        return 200, await users().query_user(user_id)

    async def put_user(request: Request, user_id: str) -> tuple[int, Any]:
        admin = await require_admin(hs, request)
        changes = user_changes(parse_json_object(request, max_body))
        created = await users().create_or_modify(admin, user_id, changes)
        return (201 if created else 200), await users().query_user(user_id)

    async def deactivate(request: Request, user_id: str) -> tuple[int, Any]:
        await require_admin(hs, request)
        body = parse_json_object(request, max_body, allow_empty=True)
        return 200, await users().deactivate(user_id, optional(body, "erase", bool, "a boolean", False))

    async def reset_password(request: Request, user_id: str) -> tuple[int, Any]:
        await require_admin(hs, request)
        body = parse_json_object(request, max_body)
        await users().reset_password(user_id, require(body, "new_password", str, "a string"),
                                     optional(body, "logout_devices", bool, "a boolean", True))
        return 200, {}

    async def get_admin(request: Request, user_id: str) -> tuple[int, Any]:
        await require_admin(hs, request)
        return 200, {"admin": (await users().get_existing(user_id)).is_admin}

    async def put_admin(request: Request, user_id: str) -> tuple[int, Any]:
        admin = await require_admin(hs, request)
        wanted = require(parse_json_object(request, max_body), "admin", bool, "a boolean")
        if user_id == admin.user_id and not wanted:
            raise invalid_param("You may not demote yourself")
        await users().set_admin(user_id, wanted)
        return 200, {}

    async def whois(request: Request, user_id: str) -> tuple[int, Any]:
        await require_admin(hs, request)
        return 200, await users().whois(user_id)

    async def list_devices(request: Request, user_id: str) -> tuple[int, Any]:
        await require_admin(hs, request)
        return 200, await users().list_devices(user_id)

    async def get_device(request: Request, user_id: str, device_id: str) -> tuple[int, Any]:
        await require_admin(hs, request)
        return 200, await users().get_device(user_id, device_id)

    async def put_device(request: Request, user_id: str, device_id: str) -> tuple[int, Any]:
        await require_admin(hs, request)
        body = parse_json_object(request, max_body, allow_empty=True)
        await users().rename_device(user_id, device_id, optional(body, "display_name", str, "a string"))
        return 200, {}

    async def delete_device(request: Request, user_id: str, device_id: str) -> tuple[int, Any]:
        await require_admin(hs, request)
        await users().delete_devices(user_id, [device_id])
        return 200, {}

    async def delete_devices(request: Request, user_id: str) -> tuple[int, Any]:
        await require_admin(hs, request)
        devices = require(parse_json_object(request, max_body), "devices", list, "a list of device IDs")
        if not all(isinstance(d, str) for d in devices):
            raise bad_json("devices must be a list of device IDs")
        await users().delete_devices(user_id, devices)
        return 200, {}

    async def joined_rooms(request: Request, user_id: str) -> tuple[int, Any]:
        await require_admin(hs, request)
        return 200, await users().joined_rooms(user_id)

    async def login_as(request: Request, user_id: str) -> tuple[int, Any]:
        await require_admin(hs, request)
        body = parse_json_object(request, max_body, allow_empty=True)
        return 200, await users().login_as(user_id, optional(body, "valid_until_ms", int, "an integer"))

    async def media_statistics(request: Request) -> tuple[int, Any]:
        await require_admin(hs, request)
        return 200, await users().media_statistics(media_query(request))

    async def server_notice(request: Request, txn_id: str | None = None) -> tuple[int, Any]:
        await require_admin(hs, request)
        body = parse_json_object(request, max_body)
        event_id = await hs.get(ServerNoticesHandler).send(
            require(body, "user_id", str, "a user ID"), optional(body, "type", str, "a string", "m.room.message"),
            require(body, "content", dict, "an object"), optional(body, "state_key", str, "a string"), txn_id)
        return 200, {"event_id": event_id}

    async def shadow_ban(request: Request, user_id: str) -> tuple[int, Any]:
        admin = await require_admin(hs, request)
        if user_id == admin.user_id:
            raise invalid_param("You may not shadow-ban yourself")
        await users().set_shadow_banned(user_id, True)
        return 200, {}

    async def unshadow_ban(request: Request, user_id: str) -> tuple[int, Any]:
        await require_admin(hs, request)
        await users().set_shadow_banned(user_id, False)
        return 200, {}

    async def get_override(request: Request, user_id: str) -> tuple[int, Any]:
        await require_admin(hs, request)
        return 200, await hs.get(RatelimitOverrides).get(user_id)

    async def set_override(request: Request, user_id: str) -> tuple[int, Any]:
        await require_admin(hs, request)
        body = parse_json_object(request, max_body, allow_empty=True)
        return 200, await hs.get(RatelimitOverrides).set(
            user_id, optional(body, "messages_per_second", int, "an integer", 0),
            optional(body, "burst_count", int, "an integer", 0))

    async def delete_override(request: Request, user_id: str) -> tuple[int, Any]:
        await require_admin(hs, request)
        await hs.get(RatelimitOverrides).delete(user_id)
        return 200, {}

    router.add("POST", ADMIN_V1 + "/users/{user_id}/shadow_ban", shadow_ban)
    router.add("DELETE", ADMIN_V1 + "/users/{user_id}/shadow_ban", unshadow_ban)
    router.add("GET", ADMIN_V1 + "/users/{user_id}/override_ratelimit", get_override)
    router.add("POST", ADMIN_V1 + "/users/{user_id}/override_ratelimit", set_override)
    router.add("DELETE", ADMIN_V1 + "/users/{user_id}/override_ratelimit", delete_override)
    router.add("POST", ADMIN_V1 + "/send_server_notice", server_notice)
    router.add("PUT", ADMIN_V1 + "/send_server_notice/{txn_id}", server_notice)
    router.add("GET", ADMIN_V1 + "/statistics/users/media", media_statistics)
    router.add("GET", ADMIN_V2 + "/users", list_users)
    router.add("GET", ADMIN_V2 + "/users/{user_id}", query_user)
    router.add("PUT", ADMIN_V2 + "/users/{user_id}", put_user)
    router.add("POST", ADMIN_V1 + "/deactivate/{user_id}", deactivate)
    router.add("POST", ADMIN_V1 + "/reset_password/{user_id}", reset_password)
    router.add("GET", ADMIN_V1 + "/users/{user_id}/admin", get_admin)
    router.add("PUT", ADMIN_V1 + "/users/{user_id}/admin", put_admin)
    # The client-server API's /admin/whois (spec shape, also for the user themself) is apps_misc's.
    router.add("GET", ADMIN_V1 + "/whois/{user_id}", whois)
    router.add("GET", ADMIN_V2 + "/users/{user_id}/devices", list_devices)
    router.add("POST", ADMIN_V2 + "/users/{user_id}/delete_devices", delete_devices)
    router.add("GET", ADMIN_V2 + "/users/{user_id}/devices/{device_id}", get_device)
    router.add("PUT", ADMIN_V2 + "/users/{user_id}/devices/{device_id}", put_device)
    router.add("DELETE", ADMIN_V2 + "/users/{user_id}/devices/{device_id}", delete_device)
    router.add("GET", ADMIN_V1 + "/users/{user_id}/joined_rooms", joined_rooms)
    router.add("POST", ADMIN_V1 + "/users/{user_id}/login", login_as)
