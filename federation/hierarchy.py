"""Serving ``GET /_matrix/federation/v1/hierarchy/{roomId}``: one space and its direct children,
for a server whose user walks the space (homeserver/handlers/rooms/hierarchy.py is the client side).

A room is described to a server that could peek or join it: world-readable, a join rule that lets
anyone join or knock, ``restricted`` (with ``allowed_room_ids``, which the asking server checks for
its user), or one of its users joined. The root must be such a room (else 404 ``M_NOT_FOUND``, as
the spec says); a child we hold that is not goes into ``inaccessible_children``; children we do
not hold are left out.
"""

from __future__ import annotations

from typing import Any

from federation.server_visibility import server_in_room
from homeserver.errors import not_found
from homeserver.handlers.rooms.hierarchy import space_children
from homeserver.handlers.rooms.room_state import check_room_id
from homeserver.handlers.rooms.summary import (
    ALWAYS_VISIBLE_RULES,
    RESTRICTED_RULES,
    RoomState,
    RoomSummaries,
    allowed_room_ids,
    join_rule_of,
    state_content,
)
from homeserver.server import Server


class FederationHierarchy:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.summaries = hs.get(RoomSummaries)

    async def hierarchy(self, origin: str, room_id: str, suggested_only: bool) -> dict[str, Any]:
        check_room_id(room_id)
        root = await self._accessible_chunk(origin, room_id, suggested_only)
        if root is None:
            raise not_found("Room not found or not visible to your server")
        children: list[dict[str, Any]] = []
        inaccessible: list[str] = []
        for child in root.pop("_children"):
            if await self.summaries.state.get_room_version(child) is None:
                continue
            chunk = await self._accessible_chunk(origin, child, suggested_only)
            if chunk is None:
                inaccessible.append(child)
            else:
                chunk.pop("_children")
                children.append(chunk)
        return {"room": root, "children": children, "inaccessible_children": inaccessible}

    async def _accessible_chunk(self, origin: str, room_id: str, suggested_only: bool) -> dict[str, Any] | None:
        """The room's chunk with ``children_state`` (and its child IDs under ``_children``)."""
        if await self.summaries.state.get_room_version(room_id) is None:
            return None
        state = await self.summaries.state_without_members(room_id)
        if not state or not await self._accessible(origin, room_id, state):
            return None
        children = space_children(state, suggested_only)
        chunk = await self.summaries.summary(room_id, state)
        chunk["children_state"] = [child.event for child in children]
        if join_rule_of(state) in RESTRICTED_RULES:
            chunk["allowed_room_ids"] = allowed_room_ids(state)
        chunk["_children"] = [child.room_id for child in children]
        return chunk

    async def _accessible(self, origin: str, room_id: str, state: RoomState) -> bool:
        rule = join_rule_of(state)
        history = state_content(state, "m.room.history_visibility").get("history_visibility")
        if rule in ALWAYS_VISIBLE_RULES or rule in RESTRICTED_RULES or history == "world_readable":
            return True
        return await server_in_room(self.hs, origin, room_id)
