"""``/createRoom`` and membership: join, knock, invite, leave, forget, kick, ban, unban,
``/joined_rooms``, ``/rooms/{roomId}/members`` and ``/joined_members``."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.errors import bad_json, forbidden, invalid_param
from homeserver.events.identifiers import is_valid_user_id
from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.rooms.auto_join import AutoJoinHandler
from homeserver.handlers.rooms.membership import RoomMemberHandler
from homeserver.handlers.rooms.room_create import RoomCreationHandler, parse_create_room
from homeserver.handlers.rooms.room_reads import RoomReadHandler
from homeserver.handlers.rooms.room_state import check_room_id
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import optional, parse_json_object, query_str, query_str_list, require
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)
MEMBERSHIPS = ("join", "invite", "leave", "ban", "knock")


def path_text(*values: str | None) -> None:
    """Path segments end up in SQL text columns, where NUL is not representable."""
    for value in values:
        if value is not None and "\x00" in value:
            raise invalid_param("Path parameters may not contain NUL characters")


def body_of(request: Request, hs: Server, allow_empty: bool = False) -> dict[str, Any]:
    return parse_json_object(request, int(hs.config.max_request_body_size), allow_empty=allow_empty)


def reason_of(body: dict[str, Any]) -> str | None:
    return optional(body, "reason", str, "a string")


# Join body keys that are not member-event content: the server sets the membership and
# any restricted-join authoriser; third_party_signed is a request parameter (3PID invites).
NOT_JOIN_CONTENT = ("membership", "third_party_signed", "join_authorised_via_users_server")


def join_content_of(body: dict[str, Any]) -> dict[str, Any]:
    """The extra keys of a join body, which go into the member event as Synapse does."""
    reason_of(body)
    return {key: value for key, value in body.items() if key not in NOT_JOIN_CONTENT}


def target_user_of(body: dict[str, Any]) -> str:
    user_id = require(body, "user_id", str, "a user ID")
    if not is_valid_user_id(user_id):
        raise bad_json(f"{user_id!r} is not a valid user ID")
    return user_id


def register_routes(router: Router, hs: Server) -> None:
    auth = hs.get(Auth)
    # Built now, not on first use: they subscribe to profile changes (new member events)
    # and to new accounts (auto_join_rooms).
    hs.get(RoomMemberHandler)
    hs.get(AutoJoinHandler)

    def members() -> RoomMemberHandler:
        return hs.get(RoomMemberHandler)

    async def create_room(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, auth)
        parsed = parse_create_room(body_of(request, hs, allow_empty=True), hs.config.default_room_version)
        room_id, alias = await hs.get(RoomCreationHandler).create_room(
            requester.user_id, parsed, is_admin=requester.is_admin, shadow_banned=requester.shadow_banned)
        body: dict[str, Any] = {"room_id": room_id}
        if alias is not None:
            body["room_alias"] = alias
        return 200, body

    async def join_by_id(request: Request, room_id: str) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, auth, allow_guest=True)
        check_room_id(room_id)
        body = body_of(request, hs, allow_empty=True)
        joined = await members().join(requester.user_id, room_id, join_content_of(body), requester.is_guest,
                                      via=query_str_list(request, "via"))
        return 200, {"room_id": joined}

    async def join_by_id_or_alias(request: Request, room: str) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, auth, allow_guest=True)
        body = body_of(request, hs, allow_empty=True)
        # ``via`` since v1.12; ``server_name`` is the older name, still sent by clients.
        via = query_str_list(request, "via") + query_str_list(request, "server_name")
        joined = await members().join(requester.user_id, room, join_content_of(body), requester.is_guest, via=via)
        return 200, {"room_id": joined}

    async def knock(request: Request, room: str) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, auth)
        body = body_of(request, hs, allow_empty=True)
        via = query_str_list(request, "via") + query_str_list(request, "server_name")
        knocked = await members().knock(requester.user_id, room, reason_of(body), via=via)
        return 200, {"room_id": knocked}

    async def invite(request: Request, room_id: str) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, auth)
        check_room_id(room_id)
        body = body_of(request, hs)
        if "user_id" not in body and "id_server" in body:
            raise forbidden("Third-party invites are not supported")
        await members().invite(requester.user_id, room_id, target_user_of(body), reason_of(body),
                               shadow_banned=requester.shadow_banned)
        return 200, {}

    async def leave(request: Request, room_id: str) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, auth, allow_guest=True)
        body = body_of(request, hs, allow_empty=True)
        await members().leave(requester.user_id, room_id, reason_of(body))
        return 200, {}

    async def forget(request: Request, room_id: str) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, auth)
        body_of(request, hs, allow_empty=True)
        await members().forget(requester.user_id, room_id)
        return 200, {}

    def moderation(action: str) -> Any:
        async def handle(request: Request, room_id: str) -> tuple[int, dict[str, Any]]:
            requester = await get_user_by_req(request, auth)
            check_room_id(room_id)
            body = body_of(request, hs)
            target = target_user_of(body)
            await getattr(members(), action)(requester.user_id, room_id, target, reason_of(body))
            return 200, {}

        return handle

    async def joined_rooms(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, auth, allow_guest=True)
        return 200, {"joined_rooms": await hs.get(RoomReadHandler).get_joined_rooms(requester.user_id)}

    async def room_members(request: Request, room_id: str) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, auth, allow_guest=True)
        check_room_id(room_id)
        membership = query_str(request, "membership")
        not_membership = query_str(request, "not_membership")
        for name, value in (("membership", membership), ("not_membership", not_membership)):
            if value is not None and value not in MEMBERSHIPS:
                raise invalid_param(f"{name} must be one of {', '.join(MEMBERSHIPS)}")
        chunk = await hs.get(RoomReadHandler).get_members(
            requester, room_id, query_str(request, "at"), membership, not_membership)
        return 200, {"chunk": chunk}

    async def joined_members(request: Request, room_id: str) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, auth, allow_guest=True)
        check_room_id(room_id)
        return 200, await hs.get(RoomReadHandler).get_joined_members(requester, room_id)

    router.add("POST", client_paths("/createRoom"), create_room)
    router.add("POST", client_paths("/rooms/{room_id}/join"), join_by_id)
    router.add("POST", client_paths("/join/{room}"), join_by_id_or_alias)
    router.add("POST", client_paths("/knock/{room}"), knock)
    router.add("POST", client_paths("/rooms/{room_id}/invite"), invite)
    router.add("POST", client_paths("/rooms/{room_id}/leave"), leave)
    router.add("POST", client_paths("/rooms/{room_id}/forget"), forget)
    for action in ("kick", "ban", "unban"):
        router.add("POST", client_paths(f"/rooms/{{room_id}}/{action}"), moderation(action))
    router.add("GET", client_paths("/joined_rooms"), joined_rooms)
    router.add("GET", client_paths("/rooms/{room_id}/members"), room_members)
    router.add("GET", client_paths("/rooms/{room_id}/joined_members"), joined_members)

