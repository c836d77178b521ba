"""``/profile/{userId}``: read anyone's profile, change your own display name and avatar."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.handlers.auth import Auth
from homeserver.handlers.profile import PROFILE_FIELDS, ProfileHandler, profile_json
from homeserver.http.errors import missing_param, not_found
from homeserver.http.request import optional, parse_json_object
from homeserver.http.router import Router, client_paths

RESOURCES = ("client",)


def register_routes(router: Router, hs: Any) -> None:
    max_body = hs.config.max_request_body_size

    async def get_profile(request: Request, user_id: str) -> tuple[int, dict[str, Any]]:
        profile = await hs.get(ProfileHandler).get_profile(user_id)
        return 200, profile_json(profile)

    async def get_field(request: Request, user_id: str, field: str) -> tuple[int, dict[str, Any]]:
        if field not in PROFILE_FIELDS:
            raise not_found("Profile field not found")
        # An unset field reads as an empty object, as Synapse answers.
        profile = profile_json(await hs.get(ProfileHandler).get_profile(user_id))
        return 200, {field: profile[field]} if field in profile else {}

    async def set_field(request: Request, user_id: str, field: str) -> tuple[int, dict[str, Any]]:
        requester = await hs.get(Auth).get_user_by_req(request, allow_guest=True)
        if field not in PROFILE_FIELDS:
            raise not_found("Profile field not found")
        body = parse_json_object(request, max_body)
        if field not in body:
            raise missing_param(field)
        value = optional(body, field, str, "a string")
        await hs.get(ProfileHandler).set_field(requester, user_id, field, value)
        return 200, {}

    async def delete_field(request: Request, user_id: str, field: str) -> tuple[int, dict[str, Any]]:
        requester = await hs.get(Auth).get_user_by_req(request, allow_guest=True)
        if field not in PROFILE_FIELDS:
            raise not_found("Profile field not found")
        await hs.get(ProfileHandler).set_field(requester, user_id, field, None)
        return 200, {}

    router.add("GET", client_paths("/profile/{user_id}"), get_profile)
    router.add("GET", client_paths("/profile/{user_id}/{field}"), get_field)
    router.add("PUT", client_paths("/profile/{user_id}/{field}"), set_field)
    router.add("DELETE", client_paths("/profile/{user_id}/{field}"), delete_field)
