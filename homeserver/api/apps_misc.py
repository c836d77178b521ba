"""Smaller app-facing endpoints: ``/v1/mutual_rooms``, ``/v1/room_summary/{roomIdOrAlias}``,
``/v3/admin/whois/{userId}`` and ``/thirdparty/*``."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.accounts.whois import WhoisHandler
from homeserver.handlers.rooms.mutual_rooms import MutualRoomsHandler
from homeserver.handlers.rooms.summary import RoomSummaryHandler
from homeserver.handlers.rooms.thirdparty import ThirdPartyHandler
from homeserver.http.auth import get_user_by_req, token_from_request
from homeserver.http.request import query_str
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)
MUTUAL_ROOMS = ("/_matrix/client/v1/mutual_rooms", "/_matrix/client/unstable/uk.half-shot.msc2666/user/mutual_rooms")
ROOM_SUMMARY = ("/_matrix/client/v1/room_summary/{room}",
                "/_matrix/client/unstable/im.nheko.summary/summary/{room}",
                "/_matrix/client/unstable/im.nheko.summary/rooms/{room}/summary")


def register_routes(router: Router, hs: Server) -> None:
    async def mutual_rooms(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth))
        user_id = query_str(request, "user_id", required=True)
        return 200, await hs.get(MutualRoomsHandler).mutual_rooms(requester.user_id, user_id,
                                                                   query_str(request, "from"))

    async def room_summary(request: Request, room: str) -> tuple[int, dict[str, Any]]:
        # Anyone may ask; what a caller without a token sees is what anyone may (public, knockable,
        # world-readable rooms). A token that is sent must be valid.
        user_id = None
        if token_from_request(request) is not None:
            user_id = (await get_user_by_req(request, hs.get(Auth), allow_guest=True)).user_id
        return 200, await hs.get(RoomSummaryHandler).get_summary(user_id, room)

    async def whois(request: Request, user_id: str) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth))
        return 200, await hs.get(WhoisHandler).whois(requester, user_id)

    async def protocols(request: Request) -> tuple[int, dict[str, Any]]:
        await get_user_by_req(request, hs.get(Auth), allow_guest=True)
        return 200, await hs.get(ThirdPartyHandler).get_protocols()

    async def protocol(request: Request, protocol: str) -> tuple[int, dict[str, Any]]:
        await get_user_by_req(request, hs.get(Auth), allow_guest=True)
        return 200, await hs.get(ThirdPartyHandler).get_protocol(protocol)

    def lookup(kind: str) -> Any:
        async def handler(request: Request, protocol: str | None = None) -> tuple[int, list[Any]]:
            await get_user_by_req(request, hs.get(Auth), allow_guest=True)
            fields = {k.decode(): v[0].decode() for k, v in (request.args or {}).items()
                      if k != b"access_token" and v}
            return 200, await hs.get(ThirdPartyHandler).lookup(kind, protocol, fields)
        return handler

    router.add("GET", MUTUAL_ROOMS, mutual_rooms)
    router.add("GET", ROOM_SUMMARY, room_summary)
    router.add("GET", client_paths("/admin/whois/{user_id}"), whois)
    router.add("GET", client_paths("/thirdparty/protocols"), protocols)
    router.add("GET", client_paths("/thirdparty/protocol/{protocol}"), protocol)
    for kind in ("location", "user"):
        router.add("GET", client_paths(f"/thirdparty/{kind}"), lookup(kind))
        router.add("GET", client_paths(f"/thirdparty/{kind}/{{protocol}}"), lookup(kind))
