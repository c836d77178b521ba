"""The rooms table (version, creator, directory visibility) and each room's DAG head."""

from __future__ import annotations

from typing import Any

import attrs

from storage.engine import Transaction

_ROOM = "SELECT room_version, creator, is_public FROM rooms WHERE room_id = ?"
_INSERT_ROOM = (
    "INSERT INTO rooms (room_id, room_version, creator, is_public, created_ts) VALUES (?, ?, ?, ?, ?)"
)
_SET_PUBLIC = "UPDATE rooms SET is_public = ? WHERE room_id = ?"
_PUBLIC_ROOMS = "SELECT room_id FROM rooms WHERE is_public = 1"
_HEAD = "SELECT event_id, depth, state_group FROM room_heads WHERE room_id = ?"
_UPSERT_HEAD = (
    "INSERT INTO room_heads (room_id, event_id, depth, state_group) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (room_id) DO UPDATE SET event_id = excluded.event_id,"
    " depth = excluded.depth, state_group = excluded.state_group"
)


@attrs.frozen(slots=True)
class RoomRow:
    room_id: str
    room_version: str
    creator: str
    is_public: bool


@attrs.frozen(slots=True)
class RoomHeadRow:
    event_id: str
    depth: int
    state_group: int


class RoomStore:
    def __init__(self, hs: Any) -> None:
        self.db = hs.db
        self._versions: dict[str, str] = {}

    async def get_room(self, room_id: str) -> RoomRow | None:
        rows = await self.db.execute("get_room", _ROOM, room_id)
        if not rows:
            return None
        version, creator, is_public = rows[0]
        self._versions[room_id] = version
        return RoomRow(room_id, version, creator, bool(is_public))

    async def get_room_version_id(self, room_id: str) -> str | None:
        """The room's version identifier, or None for a room we do not know."""
        if room_id in self._versions:
            return self._versions[room_id]
        room = await self.get_room(room_id)
        return room.room_version if room else None

    async def set_public(self, room_id: str, is_public: bool) -> None:
        await self.db.execute("set_room_public", _SET_PUBLIC, 1 if is_public else 0, room_id)

    async def get_public_room_ids(self) -> list[str]:
        rows = await self.db.execute("get_public_room_ids", _PUBLIC_ROOMS)
        return [row[0] for row in rows]

    async def get_head(self, room_id: str) -> RoomHeadRow | None:
        rows = await self.db.execute("get_room_head", _HEAD, room_id)
        return RoomHeadRow(rows[0][0], int(rows[0][1]), int(rows[0][2])) if rows else None


def insert_room_txn(txn: Transaction, room: RoomRow, created_ts: int) -> None:
    txn.execute(
        _INSERT_ROOM, (room.room_id, room.room_version, room.creator, 1 if room.is_public else 0, created_ts)
    )


def set_head_txn(txn: Transaction, room_id: str, head: RoomHeadRow) -> None:
    txn.execute(_UPSERT_HEAD, (room_id, head.event_id, head.depth, head.state_group))
