"""``/profile/{userId}``: read anyone's profile, change fields of your own.

Reading needs no token unless ``require_auth_for_profile_requests`` is set.
"""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from federation.remote_profiles import RemoteProfiles
from homeserver.errors import missing_param
from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.accounts.profile import ProfileHandler, check_key
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import parse_json_object
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)


def register_routes(router: Router, hs: Server) -> None:
    max_body = hs.config.max_request_body_size
    require_auth: bool = hs.config.require_auth_for_profile_requests

    async def reader(request: Request) -> str | None:
        if not require_auth:
            return None
        return (await get_user_by_req(request, hs.get(Auth))).user_id

    async def get_profile(request: Request, user_id: str) -> tuple[int, dict[str, Any]]:
        viewer = await reader(request)
        remote = hs.get(RemoteProfiles)
        if remote.is_remote(user_id):
            return 200, await remote.get_profile(user_id)
        profile = await hs.get(ProfileHandler).get_profile(user_id, viewer)
        return 200, profile.to_json()

    async def get_field(request: Request, user_id: str, key: str) -> tuple[int, dict[str, Any]]:
        viewer = await reader(request)
        remote = hs.get(RemoteProfiles)
        if remote.is_remote(user_id):
            check_key(key)
            return 200, {key: await remote.get_field(user_id, key)}
        return 200, {key: await hs.get(ProfileHandler).get_field(user_id, key, viewer)}

    async def set_field(request: Request, user_id: str, key: str) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth), allow_guest=True)
        body = parse_json_object(request, max_body)
        if key not in body:
            raise missing_param(key)
        await hs.get(ProfileHandler).set_field(requester, user_id, key, body[key])
        return 200, {}

    async def delete_field(request: Request, user_id: str, key: str) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth), allow_guest=True)
        await hs.get(ProfileHandler).delete_field(requester, user_id, key)
        return 200, {}

    router.add("GET", client_paths("/profile/{user_id}"), get_profile)
    router.add("GET", client_paths("/profile/{user_id}/{key}"), get_field)
    router.add("PUT", client_paths("/profile/{user_id}/{key}"), set_field)
    router.add("DELETE", client_paths("/profile/{user_id}/{key}"), delete_field)
