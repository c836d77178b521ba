"""Synapse's event reports admin API: list, read and delete reported events (server admins only)."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.api.admin_auth import ADMIN_V1, require_admin
from homeserver.errors import invalid_param
from homeserver.handlers.rooms.reports import ReportHandler
from homeserver.http.request import query_int, query_str
from homeserver.http.router import Router
from homeserver.server import Server

RESOURCES = ("client",)
DEFAULT_PAGE = 100


def report_query(request: Request) -> dict[str, Any]:
    offset = query_int(request, "from", default=0, minimum=0)
    limit = query_int(request, "limit", default=DEFAULT_PAGE, minimum=0, maximum=2**31)
    direction = query_str(request, "dir", "b")
    if direction not in ("b", "f"):
        raise invalid_param("dir must be 'b' or 'f'")
    return {"offset": min(offset, 2**62), "limit": limit, "backwards": direction == "b",
            "room_id": query_str(request, "room_id"), "user_id": query_str(request, "user_id"),
            "event_sender": query_str(request, "event_sender_user_id")}


def report_id_of(text: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise invalid_param("The report_id parameter must be a string representing a positive integer")
    return int(text)


def register_routes(router: Router, hs: Server) -> None:
    async def list_reports(request: Request) -> tuple[int, dict[str, Any]]:
        await require_admin(hs, request)
        return 200, await hs.get(ReportHandler).list_event_reports(**report_query(request))

    async def get_report(request: Request, report_id: str) -> tuple[int, dict[str, Any]]:
        await require_admin(hs, request)
        return 200, await hs.get(ReportHandler).get_event_report(report_id_of(report_id))

    async def delete_report(request: Request, report_id: str) -> tuple[int, dict[str, Any]]:
        await require_admin(hs, request)
        await hs.get(ReportHandler).delete_event_report(report_id_of(report_id))
        return 200, {}

    router.add("GET", ADMIN_V1 + "/event_reports", list_reports)
    router.add("GET", ADMIN_V1 + "/event_reports/{report_id}", get_report)
    router.add("DELETE", ADMIN_V1 + "/event_reports/{report_id}", delete_report)
