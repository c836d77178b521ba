"""``GET/POST /_matrix/federation/v1/publicRooms``: our room directory, for other servers.

Only when ``allow_public_rooms_over_federation`` is true (403 otherwise, as Synapse).
"""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from federation.queries import FederationQueryHandler
from federation.transport.auth import FederationAuth
from homeserver.errors import bad_json
from homeserver.http.request import optional, query_bool, query_int, query_str
from homeserver.http.router import Router
from homeserver.server import Server

RESOURCES = ("federation",)
MAX_BODY = 64 * 1024
MAX_LIMIT = 500


def register_routes(router: Router, hs: Server) -> None:
    async def get_public_rooms(request: Request) -> tuple[int, Any]:
        await hs.get(FederationAuth).authenticate(request)
        limit = query_int(request, "limit", None, minimum=0, maximum=MAX_LIMIT)
        query_bool(request, "include_all_networks")
        query_str(request, "third_party_instance_id")
        return 200, await hs.get(FederationQueryHandler).public_rooms(limit or None, query_str(request, "since"),
                                                                      None)

    async def post_public_rooms(request: Request) -> tuple[int, Any]:
        _origin, body = await hs.get(FederationAuth).authenticate(request, MAX_BODY)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise bad_json("The body must be a JSON object")
        limit = optional(body, "limit", int, "an integer")
        if limit is not None and limit < 0:
            raise bad_json("limit must not be negative")
        since = optional(body, "since", str, "a string")
        search_filter = optional(body, "filter", dict, "an object", {})
        term = optional(search_filter, "generic_search_term", str, "a string")
        optional(body, "include_all_networks", bool, "true or false")
        optional(body, "third_party_instance_id", str, "a string")
        return 200, await hs.get(FederationQueryHandler).public_rooms(min(limit, MAX_LIMIT) if limit else None,
                                                                      since, term)

    router.add("GET", "/_matrix/federation/v1/publicRooms", get_public_rooms)
    router.add("POST", "/_matrix/federation/v1/publicRooms", post_public_rooms)
