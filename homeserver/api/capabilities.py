"""``GET /capabilities``: what this server lets a client change."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.config.schema import SUPPORTED_ROOM_VERSIONS
from homeserver.handlers.accounts.auth import Auth
from homeserver.http.auth import get_user_by_req
from homeserver.http.router import Router, client_paths

RESOURCES = ("client",)


def register_routes(router: Router, hs: Any) -> None:
    async def capabilities(request: Request) -> tuple[int, dict[str, Any]]:
        await get_user_by_req(request, hs.get(Auth), allow_guest=True)
        return 200, {"capabilities": {
            "m.change_password": {"enabled": True},
            "m.set_displayname": {"enabled": True},
            "m.set_avatar_url": {"enabled": True},
            "m.3pid_changes": {"enabled": False},
            "m.get_login_token": {"enabled": False},
            "m.profile_fields": {"enabled": True},
            "m.room_versions": {
                "default": hs.config.default_room_version,
                "available": {version: "stable" for version in SUPPORTED_ROOM_VERSIONS},
            },
        }}

    router.add("GET", client_paths("/capabilities"), capabilities)
