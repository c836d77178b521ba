"""Reporting abuse: ``/rooms/{roomId}/report/{eventId}``, ``/rooms/{roomId}/report``, ``/users/{userId}/report``."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.rooms.reports import ReportHandler
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import optional, parse_json_object, require
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)


def register_routes(router: Router, hs: Server) -> None:
    max_body = hs.config.max_request_body_size

    async def report_event(request: Request, room_id: str, event_id: str) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth))
        body = parse_json_object(request, max_body)
        reason = optional(body, "reason", str, "a string")
        score = optional(body, "score", int, "an integer")
        await hs.get(ReportHandler).report_event(requester.user_id, room_id, event_id, reason, score)
        return 200, {}

    async def report_room(request: Request, room_id: str) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth))
        reason = require(parse_json_object(request, max_body), "reason", str, "a string")
        await hs.get(ReportHandler).report_room(requester.user_id, room_id, reason)
        return 200, {}

    async def report_user(request: Request, user_id: str) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth))
        reason = require(parse_json_object(request, max_body), "reason", str, "a string")
        await hs.get(ReportHandler).report_user(requester.user_id, user_id, reason)
        return 200, {}

    router.add("POST", client_paths("/rooms/{room_id}/report/{event_id}"), report_event)
    router.add("POST", client_paths("/rooms/{room_id}/report"), report_room)
    router.add("POST", client_paths("/users/{user_id}/report"), report_user)
