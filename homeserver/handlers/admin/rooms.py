"""Server admins looking at rooms: Synapse's room list, details, members, state and forward
extremities (``/_synapse/admin/v1/rooms``), and blocking a room."""

from __future__ import annotations

from typing import Any

import attrs

from homeserver.errors import invalid_param, not_found
from homeserver.events.identifiers import is_valid_room_id
from homeserver.handlers.accounts.auth import now_ms
from homeserver.handlers.rooms.event_format import client_event_dict
from homeserver.handlers.rooms.room_state import RoomStateHandler
from homeserver.pipeline import EventPipeline
from homeserver.server import Server
from storage.stores.admin_rooms import AdminRoomStore, RoomSummary
from storage.stores.blocked_rooms import BlockedRoomStore
from storage.stores.room_dag import RoomDagStore
from storage.stores.room_members import RoomMemberStore

#: Synapse's order_by values (its two old aliases included).
ORDER_BY = ("name", "canonical_alias", "joined_members", "joined_local_members", "version", "creator",
            "encryption", "federatable", "public", "join_rules", "guest_access", "history_visibility",
            "state_events", "alphabetical", "size")


@attrs.frozen
class RoomQuery:
    offset: int = 0
    limit: int = 100
    order_by: str = "name"
    backwards: bool = False
    search_term: str | None = None


def room_entry(room: RoomSummary) -> dict[str, Any]:
    """One room of the list, with Synapse's keys."""
    state = room.state
    create = state.get("m.room.create", {})
    encryption = state.get("m.room.encryption", {}).get("algorithm")
    return {
        "room_id": room.room_id, "name": state.get("m.room.name", {}).get("name"),
        "canonical_alias": state.get("m.room.canonical_alias", {}).get("alias"),
        "joined_members": room.joined_members, "joined_local_members": room.joined_local_members,
        "version": room.version, "creator": room.creator,
        "encryption": encryption if isinstance(encryption, str) else None,
        "federatable": create.get("m.federate", True) is not False, "public": room.public,
        "join_rules": state.get("m.room.join_rules", {}).get("join_rule"),
        "guest_access": state.get("m.room.guest_access", {}).get("guest_access"),
        "history_visibility": state.get("m.room.history_visibility", {}).get("history_visibility"),
        "state_events": room.state_events, "room_type": create.get("type"),
    }


def _sort_key(order_by: str) -> Any:
    if order_by == "size":
        order_by = "joined_members"
    if order_by == "alphabetical":
        order_by = "name"

    def key(entry: dict[str, Any]) -> tuple[Any, ...]:
        value = entry[order_by]
        # None sorts after any value, as PostgreSQL puts NULLs last in ascending order.
        return (value is None, "" if value is None else value, entry["room_id"])

    return key


def check_room_id(room_id: str) -> None:
    if not is_valid_room_id(room_id):
        raise invalid_param(f"{room_id} is not a valid room ID")


class AdminRoomsHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.store = hs.get(AdminRoomStore)
        self.state = hs.get(RoomStateHandler)
        self.member_store = hs.get(RoomMemberStore)
        self.blocked = hs.get(BlockedRoomStore)
        self.dag = hs.get(RoomDagStore)

    async def list_rooms(self, query: RoomQuery) -> dict[str, Any]:
        entries = [room_entry(room) for room in await self.store.summaries(self.hs.server_name)]
        if query.search_term:
            term = query.search_term.lower()
            entries = [e for e in entries if term in (e["name"] or "").lower()
                       or term in (e["canonical_alias"] or "").lower() or term in e["room_id"].lower()]
        descending = query.backwards != (query.order_by in ("joined_members", "joined_local_members",
                                                            "state_events", "size"))
        entries.sort(key=_sort_key(query.order_by), reverse=descending)
        page = entries[query.offset:query.offset + query.limit]
        body: dict[str, Any] = {"rooms": page, "offset": query.offset, "total_rooms": len(entries)}
        if query.offset + len(page) < len(entries):
            body["next_batch"] = query.offset + len(page)
        if query.offset > 0:
            body["prev_batch"] = max(0, query.offset - query.limit)
        return body

    async def summary(self, room_id: str) -> RoomSummary:
        check_room_id(room_id)
        rooms = await self.store.summaries(self.hs.server_name, room_id)
        if not rooms:
            raise not_found("Room not found")
        return rooms[0]

    async def details(self, room_id: str) -> dict[str, Any]:
        room = await self.summary(room_id)
        entry = room_entry(room)
        entry["topic"] = room.state.get("m.room.topic", {}).get("topic")
        entry["avatar"] = room.state.get("m.room.avatar", {}).get("url")
        entry["forgotten"] = False
        return entry

    async def members(self, room_id: str) -> dict[str, Any]:
        await self.summary(room_id)
        joined = sorted(await self.member_store.get_users_in_room(room_id))
        return {"members": joined, "total": len(joined)}

    async def current_state(self, room_id: str) -> dict[str, Any]:
        await self.summary(room_id)
        events = await self.state.get_current_state_events(room_id)
        return {"state": [client_event_dict(stored) for stored in events.values()]}

    async def forward_extremities(self, room_id: str) -> dict[str, Any]:
        await self.summary(room_id)
        extremities = await self.dag.get_forward_extremities(room_id)
        results = [{"event_id": event_id, "state_group": None, "depth": depth, "received_ts": None}
                   for event_id, depth in sorted(extremities.items())]
        return {"count": len(results), "results": results}

    async def delete_forward_extremities(self, room_id: str) -> dict[str, Any]:
        """Synapse's ``DELETE .../forward_extremities``: all but the newest go, so the next
        event cites one parent; run alone in the room's pipeline worker."""
        await self.summary(room_id)
        deleted = await self.hs.get(EventPipeline).run_exclusive(
            room_id, lambda: self.dag.delete_forward_extremities_but_newest(room_id))
        return {"deleted": deleted}

    async def block_status(self, room_id: str) -> dict[str, Any]:
        check_room_id(room_id)
        by = await self.blocked.blocked_by(room_id)
        return {"block": True, "user_id": by} if by is not None else {"block": False}

    async def set_blocked(self, room_id: str, admin_id: str, block: bool) -> dict[str, Any]:
        check_room_id(room_id)
        if block:
            await self.blocked.block(room_id, admin_id, now_ms(self.hs))
        else:
            await self.blocked.unblock(room_id)
        return {"block": block}
