"""``PUT /invite`` v1 (rooms of version 1 and 2) and v2 (every version): another server's
user invites one of ours. Logic in federation/membership/invites.py."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from federation.membership.invites import FederationInvites
from federation.transport.auth import FederationAuth
from homeserver.errors import bad_json
from homeserver.http.request import optional, require
from homeserver.http.router import Router
from homeserver.server import Server

RESOURCES = ("federation",)

#: The event (64 KiB at most) and the stripped state that comes with it.
MAX_BODY = 1024 * 1024


def v1_room_version(pdu: dict[str, Any]) -> str:
    """v1 carries no room version: the stripped create event may name 1 or 2; else 1."""
    unsigned = pdu.get("unsigned")
    stripped = unsigned.get("invite_room_state") if isinstance(unsigned, dict) else None
    for item in stripped if isinstance(stripped, list) else []:
        if isinstance(item, dict) and item.get("type") == "m.room.create" and isinstance(item.get("content"), dict):
            if item["content"].get("room_version") in ("1", "2"):
                return str(item["content"]["room_version"])
    return "1"


def register_routes(router: Router, hs: Server) -> None:
    auth = hs.get(FederationAuth)

    def invites() -> FederationInvites:
        return hs.get(FederationInvites)

    async def invite_v1(request: Request, room_id: str, event_id: str) -> tuple[int, Any]:
        origin, body = await auth.authenticate(request, max_body=MAX_BODY)
        await auth.check_server_acl(origin, room_id)
        if not isinstance(body, dict):
            raise bad_json("The body must be the invite event")
        unsigned = body.get("unsigned")
        state = unsigned.get("invite_room_state") if isinstance(unsigned, dict) else None
        signed = await invites().on_invite(origin, room_id, event_id, body, v1_room_version(body), state)
        return 200, [200, {"event": signed}]

    async def invite_v2(request: Request, room_id: str, event_id: str) -> tuple[int, Any]:
        origin, body = await auth.authenticate(request, max_body=MAX_BODY)
        await auth.check_server_acl(origin, room_id)
        if not isinstance(body, dict):
            raise bad_json("The body must be a JSON object")
        room_version = require(body, "room_version", str, "a room version")
        event = require(body, "event", dict, "an event")
        state = optional(body, "invite_room_state", list, "a list of stripped events", [])
        signed = await invites().on_invite(origin, room_id, event_id, event, room_version, state)
        return 200, {"event": signed}

    base = "/_matrix/federation"
    router.add("PUT", f"{base}/v1/invite/{{room_id}}/{{event_id}}", invite_v1)
    router.add("PUT", f"{base}/v2/invite/{{room_id}}/{{event_id}}", invite_v2)
