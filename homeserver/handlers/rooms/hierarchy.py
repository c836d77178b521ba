"""Spaces: ``GET /rooms/{roomId}/hierarchy`` walks a space's ``m.space.child`` tree depth-first.

Only rooms this server holds are described (a child we are not in is skipped). A room is shown
to a user, and its children walked, when the user is joined or invited, or (unless banned) when it is world-readable,
when its join rule lets anyone knock or join, or when it is ``restricted`` to a room the user is
joined to. The root must be one of those (403 otherwise). Children are ordered as the spec says:
by a valid ``order`` string, then by the child event's timestamp, then by room ID; a child event
without a non-empty ``via`` list is no link.

Paging is stateless: ``next_batch`` names the request (room, ``suggested_only``, ``max_depth``)
and how many rooms were returned before, so it survives restarts; a token used with other
parameters is refused with M_INVALID_PARAM.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator
from typing import Any

import attrs

from homeserver.errors import forbidden, invalid_param
from homeserver.handlers.rooms.room_state import check_room_id
from homeserver.handlers.rooms.summary import RoomState, RoomSummaries
from homeserver.server import Server

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
#: Deeper than any real space; bounds the walk of a maliciously deep one.
MAX_DEPTH = 50


@attrs.frozen
class HierarchyRequest:
    room_id: str
    suggested_only: bool = False
    max_depth: int | None = None
    limit: int = DEFAULT_LIMIT
    from_token: str | None = None

    def key(self) -> list[Any]:
        return [self.room_id, self.suggested_only, self.max_depth]


@attrs.frozen
class _Child:
    room_id: str
    event: dict[str, Any]
    order: str | None
    ts: int


def _valid_order(value: Any) -> str | None:
    if isinstance(value, str) and len(value) <= 50 and all(0x20 <= ord(c) <= 0x7E for c in value):
        return value
    return None


def _children(state: RoomState, suggested_only: bool) -> list[_Child]:
    children = []
    for (event_type, state_key), stored in state.items():
        content = stored.event.content
        via = content.get("via")
        if event_type != "m.space.child" or not isinstance(via, list) or not via:
            continue
        if not all(isinstance(v, str) for v in via) or (suggested_only and content.get("suggested") is not True):
            continue
        event = stored.event
        stripped = {"type": event_type, "state_key": state_key, "content": content, "sender": event.sender,
                    "origin_server_ts": event.origin_server_ts}
        children.append(_Child(state_key, stripped, _valid_order(content.get("order")), event.origin_server_ts))
    children.sort(key=lambda c: (c.order is None, c.order or "", c.ts, c.room_id))
    return children


def _encode(request: HierarchyRequest, skip: int) -> str:
    raw = json.dumps({"k": request.key(), "n": skip}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _skip_of(request: HierarchyRequest) -> int:
    if request.from_token is None:
        return 0
    token = request.from_token
    try:
        body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        raise invalid_param("Invalid from token") from None
    skip = body.get("n") if isinstance(body, dict) else None
    if not isinstance(skip, int) or isinstance(skip, bool) or skip < 0:
        raise invalid_param("Invalid from token")
    if body.get("k") != request.key():
        raise invalid_param("The from token was made for other parameters")
    return skip


class HierarchyHandler:
    def __init__(self, hs: Server) -> None:
        self.summaries = hs.get(RoomSummaries)

    async def get_hierarchy(self, user_id: str, request: HierarchyRequest) -> dict[str, Any]:
        check_room_id(request.room_id)
        skip = _skip_of(request)
        root = await self.summaries.state_if_visible(user_id, request.room_id)
        if root is None:
            raise forbidden("You may not see this room's hierarchy")
        rooms: list[dict[str, Any]] = []
        index = 0
        async for chunk in self._walk(user_id, request, root):
            if index >= skip:
                if len(rooms) == request.limit:
                    return {"rooms": rooms, "next_batch": _encode(request, index)}
                rooms.append(chunk)
            index += 1
        return {"rooms": rooms}

    async def _walk(self, user_id: str, request: HierarchyRequest,
                    root: RoomState) -> AsyncIterator[dict[str, Any]]:
        """Each visible room's chunk, depth-first from the root, each room once."""
        max_depth = MAX_DEPTH if request.max_depth is None else min(request.max_depth, MAX_DEPTH)
        stack: list[tuple[str, int, RoomState | None]] = [(request.room_id, 0, root)]
        seen: set[str] = set()
        while stack:
            room_id, depth, state = stack.pop()
            if room_id in seen:
                continue
            seen.add(room_id)
            if state is None:
                state = await self.summaries.state_if_visible(user_id, room_id)
                if state is None:
                    continue
            children = _children(state, request.suggested_only)
            chunk = await self.summaries.summary(room_id, state)
            chunk["children_state"] = [child.event for child in children]
            yield chunk
            if depth < max_depth:
                stack.extend((child.room_id, depth + 1, None) for child in reversed(children))
