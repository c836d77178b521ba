"""The key API: our keys (``/_matrix/key/v2/server``) and the notary (``/_matrix/key/v2/query``).

Unauthenticated, as the spec says: these are how servers find each other's keys in the first place.
"""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from federation.keys.local import LocalServerKeys
from federation.keys.notary import NotaryHandler
from homeserver.errors import bad_json
from homeserver.http.request import parse_json_object, query_int, require
from homeserver.http.router import Router
from homeserver.server import Server

RESOURCES = ("keys", "federation")
MAX_QUERY_BODY = 256 * 1024


def _criteria(body: dict[str, Any]) -> dict[str, dict[str, int | None]]:
    server_keys = require(body, "server_keys", dict, "an object of server names")
    criteria: dict[str, dict[str, int | None]] = {}
    for server_name, key_ids in server_keys.items():
        if not isinstance(key_ids, dict):
            raise bad_json(f"server_keys.{server_name} must be an object of key IDs")
        criteria[server_name] = {}
        for key_id, query in key_ids.items():
            if not isinstance(query, dict):
                raise bad_json(f"server_keys.{server_name}.{key_id} must be an object")
            minimum = query.get("minimum_valid_until_ts")
            if minimum is not None and (not isinstance(minimum, int) or isinstance(minimum, bool)):
                raise bad_json("minimum_valid_until_ts must be an integer")
            criteria[server_name][key_id] = minimum
    return criteria


def register_routes(router: Router, hs: Server) -> None:
    async def server_keys(request: Request, key_id: str | None = None) -> tuple[int, Any]:
        return 200, hs.get(LocalServerKeys).key_document()

    async def query_one(request: Request, server_name: str, key_id: str | None = None) -> tuple[int, Any]:
        minimum = query_int(request, "minimum_valid_until_ts", None, minimum=0)
        key_ids: dict[str, int | None] = {key_id: minimum} if key_id else {}
        return 200, await hs.get(NotaryHandler).query({server_name: key_ids}, minimum)

    async def query_many(request: Request) -> tuple[int, Any]:
        body = parse_json_object(request, MAX_QUERY_BODY)
        return 200, await hs.get(NotaryHandler).query(_criteria(body))

    router.add("GET", "/_matrix/key/v2/server", server_keys)
    # Deprecated (r0.1) but still asked for by old servers: the key ID in the path changes nothing.
    router.add("GET", "/_matrix/key/v2/server/{key_id}", server_keys)
    router.add("GET", "/_matrix/key/v2/query/{server_name}", query_one)
    router.add("GET", "/_matrix/key/v2/query/{server_name}/{key_id}", query_one)
    router.add("POST", "/_matrix/key/v2/query", query_many)
