"""``POST /user_directory/search``."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.errors import invalid_param
from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.accounts.user_directory import UserDirectoryHandler
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import optional, parse_json_object, require
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)
DEFAULT_LIMIT = 10


def register_routes(router: Router, hs: Server) -> None:
    max_body = hs.config.max_request_body_size

    async def search(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth))
        handler = hs.get(UserDirectoryHandler)
        if not handler.enabled():
            return 200, {"results": [], "limited": False}
        body = parse_json_object(request, max_body)
        term = require(body, "search_term", str, "a string")
        limit = optional(body, "limit", int, "an integer", DEFAULT_LIMIT)
        if limit < 0:
            raise invalid_param("limit must not be negative")
        results, limited = await handler.search(requester.user_id, term, limit)
        return 200, {
            "results": [
                {key: value for key, value in (("user_id", p.user_id), ("display_name", p.displayname),
                                               ("avatar_url", p.avatar_url)) if value is not None}
                for p in results
            ],
            "limited": limited,
        }

    router.add("POST", client_paths("/user_directory/search"), search)
