"""``GET /voip/turnServer``: TURN credentials for calls (docs/voip.md)."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.voip.turn import TurnHandler
from homeserver.http.auth import get_user_by_req
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)


def register_routes(router: Router, hs: Server) -> None:
    auth = hs.get(Auth)
    turn = hs.get(TurnHandler)

    async def turn_server(request: Request) -> tuple[int, dict[str, Any]]:
        # A guest is refused with M_GUEST_ACCESS_FORBIDDEN unless turn_allow_guests.
        requester = await get_user_by_req(request, auth, allow_guest=turn.allow_guests)
        credentials = turn.credentials_for(requester.user_id)
        return 200, credentials.to_json() if credentials is not None else {}

    router.add("GET", client_paths("/voip/turnServer"), turn_server)
