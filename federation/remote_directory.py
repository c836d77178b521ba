"""Asking other servers about rooms we are not in: their public room directory
(``/publicRooms``, for the client's ``/publicRooms?server=``) and a space's hierarchy
(``/hierarchy``, for the client's ``/rooms/{roomId}/hierarchy`` when a child is elsewhere).

A peer's error answer (4xx) passes through with its errcode; a directory we cannot reach is 404
``M_NOT_FOUND``; a peer failing or answering what the spec does not say is 502 ``M_UNKNOWN``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from federation.transport.client import (
    FederationClient,
    FederationDeniedError,
    FederationRequestError,
    federation_path,
    first_answer,
)
from homeserver.errors import MatrixError, forbidden
from homeserver.server import Server

logger = logging.getLogger(__name__)

PUBLIC_ROOMS_PATH = "/_matrix/federation/v1/publicRooms"
HIERARCHY_PATH = "/_matrix/federation/v1/hierarchy/{}"
MAX_RESPONSE_BYTES = 2 * 1024 * 1024
#: A hierarchy request tries at most this many of a child's ``via`` servers.
MAX_VIA = 5


def _passed_through(exc: FederationRequestError, what: str) -> MatrixError:
    if exc.code is not None and 400 <= exc.code < 500 and exc.errcode:
        error = exc.body.get("error") if isinstance(exc.body, dict) else None
        return MatrixError(exc.code, exc.errcode, error if isinstance(error, str) else what)
    return MatrixError(502, "M_UNKNOWN", f"Failed to fetch {what} from the other server")


class RemoteDirectory:
    def __init__(self, hs: Server) -> None:
        self.server_name: str = hs.server_name
        self.client = hs.get(FederationClient)

    async def public_rooms(self, server: str, limit: int | None, since: str | None,
                           search_term: str | None, include_all_networks: bool = False,
                           third_party_instance_id: str | None = None) -> dict[str, Any]:
        """``server``'s directory: GET without a search term, POST (which carries the filter) with one."""
        try:
            if search_term is None:
                args: dict[str, str | int] = {}
                if limit is not None:
                    args["limit"] = limit
                if since is not None:
                    args["since"] = since
                if include_all_networks:
                    args["include_all_networks"] = "true"
                if third_party_instance_id is not None:
                    args["third_party_instance_id"] = third_party_instance_id
                body = await self.client.get_json(server, PUBLIC_ROOMS_PATH, args,
                                                  max_response_bytes=MAX_RESPONSE_BYTES)
            else:
                request: dict[str, Any] = {"filter": {"generic_search_term": search_term},
                                           "include_all_networks": include_all_networks}
                if limit is not None:
                    request["limit"] = limit
                if since is not None:
                    request["since"] = since
                if third_party_instance_id is not None:
                    request["third_party_instance_id"] = third_party_instance_id
                body = await self.client.post_json(server, PUBLIC_ROOMS_PATH, request,
                                                   max_response_bytes=MAX_RESPONSE_BYTES)
        except FederationDeniedError:
            raise forbidden("Federation with that server is not allowed") from None
        except FederationRequestError as exc:
            logger.info("publicRooms from %s failed: %s", server, exc)
            if exc.code is None:  # no such server, or down: no directory to show (not our fault: no 5xx)
                raise MatrixError(404, "M_NOT_FOUND", "That server's room directory could not be reached") from None
            raise _passed_through(exc, "the room list") from None
        chunk = body.get("chunk") if isinstance(body, dict) else None
        if not isinstance(chunk, list):
            raise MatrixError(502, "M_UNKNOWN", "The other server sent a malformed room list")
        result: dict[str, Any] = {"chunk": [entry for entry in chunk if _is_chunk(entry)]}
        for key in ("next_batch", "prev_batch"):
            if isinstance(body.get(key), str):
                result[key] = body[key]
        estimate = body.get("total_room_count_estimate")
        if isinstance(estimate, int) and not isinstance(estimate, bool):
            result["total_room_count_estimate"] = estimate
        return result

    async def hierarchy(self, room_id: str, servers: Sequence[str], suggested_only: bool) -> dict[str, Any] | None:
        """The first answer of ``servers`` (ourselves left out) to ``/hierarchy``, checked: ``room``
        is a chunk of ``room_id`` with ``children_state``, ``children`` only chunks. None: nobody had it."""
        path = federation_path(HIERARCHY_PATH, room_id)

        async def ask(server: str) -> dict[str, Any] | None:
            body = await self.client.get_json(server, path, {"suggested_only": str(suggested_only).lower()},
                                              max_response_bytes=MAX_RESPONSE_BYTES)
            return _parsed_hierarchy(room_id, body)

        candidates = [s for s in dict.fromkeys(servers) if s != self.server_name][:MAX_VIA]
        return (await first_answer(candidates, ask, f"hierarchy of {room_id}")).value


def _is_chunk(entry: Any) -> bool:
    return isinstance(entry, dict) and isinstance(entry.get("room_id"), str) \
        and isinstance(entry.get("num_joined_members"), int)


def _children_state(entry: dict[str, Any]) -> list[dict[str, Any]]:
    state = entry.get("children_state")
    if not isinstance(state, list):
        return []
    return [e for e in state if isinstance(e, dict) and e.get("type") == "m.space.child"
            and isinstance(e.get("state_key"), str) and isinstance(e.get("content"), dict)]


def _parsed_hierarchy(room_id: str, body: Any) -> dict[str, Any] | None:
    if not isinstance(body, dict):
        return None
    room = body.get("room")
    if not isinstance(room, dict) or not _is_chunk(room) or room["room_id"] != room_id:
        return None
    children = body.get("children")
    inaccessible = body.get("inaccessible_children")
    return {
        "room": {**room, "children_state": _children_state(room)},
        "children": [{**c, "children_state": _children_state(c)} for c in children if _is_chunk(c)]
        if isinstance(children, list) else [],
        "inaccessible_children": [i for i in inaccessible if isinstance(i, str)]
        if isinstance(inaccessible, list) else [],
    }
