"""Spaces: ``GET /rooms/{roomId}/hierarchy`` walks a space's ``m.space.child`` tree depth-first.

A child this server does not hold is asked of the servers its ``m.space.child`` event names in
``via`` (``/hierarchy`` over federation, through the ``remote`` hook homeserver/app.py sets:
federation/remote_directory.py); the answer's child rooms are used as they are, without asking
again. A remote room is shown to a user by the same rules, from what its server said. A room is shown
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
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

import attrs

from homeserver.errors import forbidden, invalid_param
from homeserver.events.identifiers import server_name_of
from homeserver.handlers.rooms.room_state import check_room_id
from homeserver.handlers.rooms.summary import (
    ALWAYS_VISIBLE_RULES,
    RESTRICTED_RULES,
    RoomState,
    RoomSummaries,
)
from homeserver.server import Server
from storage.stores.room_members import RoomMemberStore

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


class RemoteSpaces(Protocol):
    async def hierarchy(self, room_id: str, servers: Sequence[str], suggested_only: bool) -> dict[str, Any] | None:
        """A server's ``/hierarchy`` answer (``room``, ``children``, ``inaccessible_children``),
        each chunk with its ``children_state``; None when none of ``servers`` had it."""
        ...


@attrs.frozen
class _Child:
    room_id: str
    event: dict[str, Any]
    order: str | None
    ts: int
    via: tuple[str, ...] = ()


def _valid_order(value: Any) -> str | None:
    if isinstance(value, str) and len(value) <= 50 and all(0x20 <= ord(c) <= 0x7E for c in value):
        return value
    return None


def space_children(state: RoomState, suggested_only: bool) -> list[_Child]:
    """The room's links to its children, in the spec's order."""
    return _ordered([{"type": event_type, "state_key": state_key, "content": stored.event.content,
                      "sender": stored.event.sender, "origin_server_ts": stored.event.origin_server_ts}
                     for (event_type, state_key), stored in state.items()], suggested_only)


def _ordered(events: list[dict[str, Any]], suggested_only: bool) -> list[_Child]:
    """``m.space.child`` events (stripped, ours or a remote server's) that link: a non-empty ``via``."""
    children = []
    for event in events:
        content = event.get("content")
        if event.get("type") != "m.space.child" or not isinstance(content, dict):
            continue
        via = content.get("via")
        if not isinstance(via, list) or not via or not all(isinstance(v, str) for v in via):
            continue
        if suggested_only and content.get("suggested") is not True:
            continue
        ts = event.get("origin_server_ts")
        ts = ts if isinstance(ts, int) and not isinstance(ts, bool) else 0
        children.append(_Child(str(event.get("state_key")), event, _valid_order(content.get("order")), ts,
                               tuple(via)))
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
        self.members = hs.get(RoomMemberStore)
        self.server_name: str = hs.server_name
        #: Other servers' /hierarchy (set by homeserver/app.py; None: only rooms held here).
        self.remote: RemoteSpaces | None = None

    async def get_hierarchy(self, user_id: str, request: HierarchyRequest) -> dict[str, Any]:
        check_room_id(request.room_id)
        skip = _skip_of(request)
        walk = _Walk(self, user_id, request)
        root = await walk.room(request.room_id, _root_via(request.room_id))
        if root is None:
            raise forbidden("You may not see this room's hierarchy")
        rooms: list[dict[str, Any]] = []
        index = 0
        async for chunk in walk.rooms(root):
            if index >= skip:
                if len(rooms) == request.limit:
                    return {"rooms": rooms, "next_batch": _encode(request, index)}
                rooms.append(chunk)
            index += 1
        return {"rooms": rooms}


def _root_via(room_id: str) -> tuple[str, ...]:
    """Where to ask for a root we do not hold: the server its ID names (IDs of v12 name none)."""
    try:
        return (server_name_of(room_id),)
    except ValueError:
        return ()


class _Walk:
    """One request's depth-first walk; remote answers are kept for the rooms they describe."""

    def __init__(self, handler: HierarchyHandler, user_id: str, request: HierarchyRequest) -> None:
        self.handler = handler
        self.user_id = user_id
        self.request = request
        self.remote_chunks: dict[str, dict[str, Any]] = {}

    async def room(self, room_id: str, via: Sequence[str]) -> tuple[dict[str, Any], list[_Child]] | None:
        """The room's chunk (without ``children_state``) and its children, if the user may see it."""
        summaries = self.handler.summaries
        state = await summaries.state_if_visible(self.user_id, room_id)
        if state is not None:
            return await summaries.summary(room_id, state), space_children(state, self.request.suggested_only)
        if await summaries.state.get_room_version(room_id) is not None:
            return None  # held here, and not for this user
        chunk = await self._remote_chunk(room_id, via)
        if chunk is None or not await self._may_see_remote(room_id, chunk):
            return None
        children_state = chunk.get("children_state")
        children = _ordered(children_state if isinstance(children_state, list) else [], self.request.suggested_only)
        return {k: v for k, v in chunk.items() if k != "children_state"}, children

    async def rooms(self, root: tuple[dict[str, Any], list[_Child]]) -> AsyncIterator[dict[str, Any]]:
        """Each visible room's chunk, depth-first from the root, each room once."""
        request = self.request
        max_depth = MAX_DEPTH if request.max_depth is None else min(request.max_depth, MAX_DEPTH)
        stack: list[tuple[str, int, tuple[str, ...], tuple[dict[str, Any], list[_Child]] | None]] = [
            (request.room_id, 0, (), root)]
        seen: set[str] = set()
        while stack:
            room_id, depth, via, found = stack.pop()
            if room_id in seen:
                continue
            seen.add(room_id)
            if found is None:
                found = await self.room(room_id, via)
                if found is None:
                    continue
            chunk, children = found
            yield {**chunk, "children_state": [child.event for child in children]}
            if depth < max_depth:
                stack.extend((child.room_id, depth + 1, child.via, None) for child in reversed(children))

    async def _remote_chunk(self, room_id: str, via: Sequence[str]) -> dict[str, Any] | None:
        if room_id in self.remote_chunks:
            return self.remote_chunks[room_id]
        remote = self.handler.remote
        if remote is None or not via:
            return None
        answer = await remote.hierarchy(room_id, via, self.request.suggested_only)
        if answer is None:
            return None
        for child in answer["children"]:
            self.remote_chunks.setdefault(child["room_id"], child)
        self.remote_chunks[room_id] = answer["room"]
        return dict(answer["room"])

    async def _may_see_remote(self, room_id: str, chunk: dict[str, Any]) -> bool:
        """The rules of ``state_if_visible``, on what the room's server said of it."""
        membership = await self.handler.members.get_membership(room_id, self.user_id)
        if membership is not None and membership.membership in ("join", "invite"):
            return True
        if membership is not None and membership.membership == "ban":
            return False
        rule = chunk.get("join_rule", "public")
        if rule in ALWAYS_VISIBLE_RULES or chunk.get("world_readable") is True:
            return True
        allowed = chunk.get("allowed_room_ids")
        if rule in RESTRICTED_RULES and isinstance(allowed, list):
            joined = await self.handler.members.get_rooms_for_user(self.user_id)
            return any(isinstance(r, str) and r in joined for r in allowed)
        return False


__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "HierarchyHandler", "HierarchyRequest", "RemoteSpaces", "space_children"]
