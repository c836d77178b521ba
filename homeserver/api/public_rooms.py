"""``GET/POST /publicRooms``: the public room directory of this server, or with ``?server=`` of
another (asked over federation ``/publicRooms``; federation/remote_directory.py)."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from federation.remote_directory import RemoteDirectory
from homeserver.api.rooms import body_of
from homeserver.errors import bad_json, invalid_param
from homeserver.events.identifiers import is_valid_server_name
from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.rooms.directory import DirectoryHandler
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import optional, query_bool, query_int, query_str
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)
MAX_LIMIT = 500


def register_routes(router: Router, hs: Server) -> None:
    def remote_server(request: Request) -> str | None:
        """The ``server`` asked for, when it is not us."""
        server = query_str(request, "server")
        if server is None or server == hs.server_name:
            return None
        if not is_valid_server_name(server):
            raise invalid_param(f"{server!r} is not a server name")
        return server

    async def get_public_rooms(request: Request) -> tuple[int, Any]:
        limit = query_int(request, "limit", None, minimum=0, maximum=MAX_LIMIT)
        since = query_str(request, "since")
        server = remote_server(request)
        if server is None:
            return 200, await hs.get(DirectoryHandler).public_rooms(limit, since, None)
        # Asking another server on a user's behalf needs a user (we are no open proxy).
        await get_user_by_req(request, hs.get(Auth), allow_guest=True)
        return 200, await hs.get(RemoteDirectory).public_rooms(
            server, limit or None, since, None, query_bool(request, "include_all_networks"),
            query_str(request, "third_party_instance_id"))

    async def post_public_rooms(request: Request) -> tuple[int, Any]:
        await get_user_by_req(request, hs.get(Auth), allow_guest=True)
        server = remote_server(request)
        body = body_of(request, hs, allow_empty=True)
        limit = optional(body, "limit", int, "an integer")
        if limit is not None and limit < 0:
            raise bad_json("limit must not be negative")
        since = optional(body, "since", str, "a string")
        search_filter = optional(body, "filter", dict, "an object", {})
        term = optional(search_filter, "generic_search_term", str, "a string")
        include_all = optional(body, "include_all_networks", bool, "true or false", False)
        instance = optional(body, "third_party_instance_id", str, "a string")
        if server is None:
            return 200, await hs.get(DirectoryHandler).public_rooms(limit, since, term)
        return 200, await hs.get(RemoteDirectory).public_rooms(
            server, min(limit, MAX_LIMIT) if limit else None, since, term, include_all, instance)

    router.add("GET", client_paths("/publicRooms"), get_public_rooms)
    router.add("POST", client_paths("/publicRooms"), post_public_rooms)
