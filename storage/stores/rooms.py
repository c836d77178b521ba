"""The rooms table (version, creator, directory visibility)."""

from __future__ import annotations

import attrs

from storage.engine import Transaction
from storage.host import StorageHost

_ROOM = "SELECT room_version, creator, is_public FROM rooms WHERE room_id = ?"
_INSERT_ROOM = (
    "INSERT INTO rooms (room_id, room_version, creator, is_public, created_ts) VALUES (?, ?, ?, ?, ?)"
)
_SET_PUBLIC = "UPDATE rooms SET is_public = ? WHERE room_id = ?"
_PUBLIC_ROOMS = "SELECT room_id FROM rooms WHERE is_public = 1"


@attrs.frozen(slots=True)
class RoomRow:
    room_id: str
    room_version: str
    creator: str
    is_public: bool


class RoomStore:
    def __init__(self, hs: StorageHost) -> None:
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

    def forget(self, room_id: str) -> None:
        """Drop what is cached about a room whose rows were purged."""
        self._versions.pop(room_id, None)

    async def get_public_room_ids(self) -> list[str]:
        rows = await self.db.execute("get_public_room_ids", _PUBLIC_ROOMS)
        return [row[0] for row in rows]



def insert_room_txn(txn: Transaction, room: RoomRow, created_ts: int) -> None:
    txn.execute(
        _INSERT_ROOM, (room.room_id, room.room_version, room.creator, 1 if room.is_public else 0, created_ts)
    )

