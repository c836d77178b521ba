"""``make_join``/``send_join`` (v1, v2), ``make_leave``/``send_leave`` (v1, v2) and
``make_knock``/``send_knock`` (v1): other servers' users joining, leaving and knocking on
rooms we are in. Logic in federation/membership/resident.py."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from federation.membership.resident import ResidentMembership
from federation.transport.auth import FederationAuth
from homeserver.errors import missing_param
from homeserver.http.request import query_bool, query_str_list
from homeserver.http.router import Router
from homeserver.server import Server

RESOURCES = ("federation",)

#: A member event is at most a PDU (64 KiB); allow for JSON escaping.
MAX_BODY = 256 * 1024


def register_routes(router: Router, hs: Server) -> None:
    auth = hs.get(FederationAuth)

    def resident() -> ResidentMembership:
        return hs.get(ResidentMembership)

    async def make(request: Request, room_id: str, user_id: str, membership: str) -> dict[str, Any]:
        origin, _ = await auth.authenticate(request)
        await auth.check_server_acl(origin, room_id)
        versions: list[str] | None = None
        if membership == "join":
            versions = query_str_list(request, "ver") or ["1"]  # the spec's default
        elif membership == "knock":
            versions = query_str_list(request, "ver")
            if not versions:
                raise missing_param("ver")
        return await resident().make_membership(origin, room_id, user_id, membership, versions)

    async def send(request: Request, room_id: str, event_id: str, membership: str,
                   omit_members: bool = False) -> dict[str, Any]:
        origin, body = await auth.authenticate(request, max_body=MAX_BODY)
        await auth.check_server_acl(origin, room_id)
        return await resident().send_membership(origin, room_id, event_id, body, membership, omit_members)

    async def make_join(request: Request, room_id: str, user_id: str) -> tuple[int, Any]:
        return 200, await make(request, room_id, user_id, "join")

    async def make_leave(request: Request, room_id: str, user_id: str) -> tuple[int, Any]:
        return 200, await make(request, room_id, user_id, "leave")

    async def send_join_v1(request: Request, room_id: str, event_id: str) -> tuple[int, Any]:
        answer = await send(request, room_id, event_id, "join")
        answer.pop("members_omitted", None)
        answer.pop("servers_in_room", None)
        return 200, [200, answer]

    async def send_join_v2(request: Request, room_id: str, event_id: str) -> tuple[int, Any]:
        # MSC3706: a partial-state answer, without most member events, when asked for.
        omit_members = query_bool(request, "omit_members", False)
        return 200, await send(request, room_id, event_id, "join", omit_members)

    async def make_knock(request: Request, room_id: str, user_id: str) -> tuple[int, Any]:
        return 200, await make(request, room_id, user_id, "knock")

    async def send_knock(request: Request, room_id: str, event_id: str) -> tuple[int, Any]:
        return 200, await send(request, room_id, event_id, "knock")

    async def send_leave_v1(request: Request, room_id: str, event_id: str) -> tuple[int, Any]:
        return 200, [200, await send(request, room_id, event_id, "leave")]

    async def send_leave_v2(request: Request, room_id: str, event_id: str) -> tuple[int, Any]:
        return 200, await send(request, room_id, event_id, "leave")

    base = "/_matrix/federation"
    router.add("GET", f"{base}/v1/make_join/{{room_id}}/{{user_id}}", make_join)
    router.add("PUT", f"{base}/v1/send_join/{{room_id}}/{{event_id}}", send_join_v1)
    router.add("PUT", f"{base}/v2/send_join/{{room_id}}/{{event_id}}", send_join_v2)
    router.add("GET", f"{base}/v1/make_leave/{{room_id}}/{{user_id}}", make_leave)
    router.add("PUT", f"{base}/v1/send_leave/{{room_id}}/{{event_id}}", send_leave_v1)
    router.add("PUT", f"{base}/v2/send_leave/{{room_id}}/{{event_id}}", send_leave_v2)
    router.add("GET", f"{base}/v1/make_knock/{{room_id}}/{{user_id}}", make_knock)
    router.add("PUT", f"{base}/v1/send_knock/{{room_id}}/{{event_id}}", send_knock)
