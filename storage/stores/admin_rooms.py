"""What the admin API's room listing and details read, a few queries for every room at once.

A summary carries the counts Synapse's ``GET /_synapse/admin/v1/rooms`` shows and the
content of the current state events that name and describe the room.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from storage.engine import Transaction
from storage.host import StorageHost

#: The state whose content a summary carries (all with state_key "").
SUMMARY_TYPES = ("m.room.name", "m.room.topic", "m.room.avatar", "m.room.canonical_alias", "m.room.join_rules",
                 "m.room.guest_access", "m.room.history_visibility", "m.room.encryption", "m.room.create")
_ROOMS = "SELECT room_id, room_version, creator, is_public FROM rooms"
_STATE_COUNTS = "SELECT room_id, COUNT(*) FROM current_state_events GROUP BY room_id"
_MEMBER_COUNTS = (
    "SELECT room_id, COUNT(*), SUM(CASE WHEN user_id LIKE ? THEN 1 ELSE 0 END) FROM room_members_current"
    " WHERE membership = 'join' GROUP BY room_id"
)
_SUMMARY_STATE = (
    "SELECT c.room_id, c.type, e.json FROM current_state_events c JOIN events e ON e.event_id = c.event_id"
    f" WHERE c.state_key = '' AND c.type IN ({', '.join('?' for _ in SUMMARY_TYPES)})"
)
_ONE_ROOM = " WHERE room_id = ?"
_ONE_ROOM_C = " AND c.room_id = ?"


@attrs.define
class RoomSummary:
    room_id: str
    version: str
    creator: str
    public: bool
    joined_members: int = 0
    joined_local_members: int = 0
    state_events: int = 0
    #: event type -> the content of that current state event.
    state: dict[str, dict[str, Any]] = attrs.field(factory=dict)


def _content(raw: str) -> dict[str, Any]:
    try:
        content = json.loads(raw).get("content")
    except ValueError:
        return {}
    return content if isinstance(content, dict) else {}


class AdminRoomStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def summaries(self, server_name: str, room_id: str | None = None) -> list[RoomSummary]:
        """Every room we know (or just ``room_id``), in no particular order; members of
        ``server_name`` count as local."""
        one = room_id is not None
        local = "%:" + server_name.replace("!", "!!").replace("%", "!%").replace("_", "!_")

        def select(txn: Transaction) -> list[RoomSummary]:
            txn.execute(_ROOMS + (_ONE_ROOM if one else ""), [room_id] if one else [])
            rooms = {r[0]: RoomSummary(r[0], r[1], r[2], bool(r[3])) for r in txn.fetchall()}
            txn.execute(_STATE_COUNTS.replace(" GROUP", (_ONE_ROOM if one else "") + " GROUP"),
                        [room_id] if one else [])
            for rid, count in txn.fetchall():
                if rid in rooms:
                    rooms[rid].state_events = int(count)
            member_sql = _MEMBER_COUNTS.replace("LIKE ?", "LIKE ? ESCAPE '!'")
            txn.execute(member_sql.replace(" GROUP", (" AND room_id = ?" if one else "") + " GROUP"),
                        [local, room_id] if one else [local])
            for rid, joined, joined_local in txn.fetchall():
                if rid in rooms:
                    rooms[rid].joined_members, rooms[rid].joined_local_members = int(joined), int(joined_local or 0)
            txn.execute(_SUMMARY_STATE + (_ONE_ROOM_C if one else ""), [*SUMMARY_TYPES, *([room_id] if one else [])])
            for rid, event_type, raw in txn.fetchall():
                if rid in rooms:
                    rooms[rid].state[event_type] = _content(raw)
            return list(rooms.values())

        return await self.db.run_interaction("admin_room_summaries", select)
