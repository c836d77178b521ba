"""``GET /notifications`` (spec "Listing Notifications")."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.push.notification_list import DEFAULT_LIMIT, NotificationListHandler
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import query_int, query_str
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)


def register_routes(router: Router, hs: Server) -> None:
    async def get_notifications(request: Request) -> tuple[int, Any]:
        requester = await get_user_by_req(request, hs.get(Auth))
        from_token = query_str(request, "from")
        limit = query_int(request, "limit", DEFAULT_LIMIT, minimum=0)
        only = query_str(request, "only")
        return 200, await hs.get(NotificationListHandler).get_notifications(requester, from_token, limit, only)

    router.add("GET", client_paths("/notifications"), get_notifications)
