"""``GET /capabilities``: what this server lets a client change."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.config.schema import SUPPORTED_ROOM_VERSIONS
from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.rooms.delayed_events import DelayedEventsHandler
from homeserver.http.auth import get_user_by_req
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)


def register_routes(router: Router, hs: Server) -> None:
    delayed = hs.get(DelayedEventsHandler)

    async def capabilities(request: Request) -> tuple[int, dict[str, Any]]:
        await get_user_by_req(request, hs.get(Auth), allow_guest=True)
        return 200, {"capabilities": {
            "m.change_password": {"enabled": True},
            "m.set_displayname": {"enabled": True},
            "m.set_avatar_url": {"enabled": True},
            "m.3pid_changes": {"enabled": False},
            "m.get_login_token": {"enabled": hs.config.login_via_existing_session.enabled},
            "m.profile_fields": {"enabled": True},
            # As Synapse advertises them; 0 means delayed events are off.
            "org.matrix.msc4140.delayed_events": {
                "max_delay_ms": delayed.max_delay_ms if delayed.enabled else 0,
                "max_scheduled": delayed.max_per_user,
            },
            "m.room_versions": {
                "default": hs.config.default_room_version,
                "available": {version: "stable" for version in SUPPORTED_ROOM_VERSIONS},
            },
        }}

    router.add("GET", client_paths("/capabilities"), capabilities)
