"""``blocked_rooms``: rooms a server admin blocked; local users may not join them."""

from __future__ import annotations

from storage.host import StorageHost

_GET = "SELECT user_id FROM blocked_rooms WHERE room_id = ?"
_BLOCK = (
    "INSERT INTO blocked_rooms (room_id, user_id, blocked_ts) VALUES (?, ?, ?)"
    " ON CONFLICT (room_id) DO NOTHING"
)
_UNBLOCK = "DELETE FROM blocked_rooms WHERE room_id = ?"


class BlockedRoomStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def blocked_by(self, room_id: str) -> str | None:
        """The admin who blocked the room, or None when it is not blocked."""
        rows = await self.db.execute("blocked_by", _GET, room_id)
        return rows[0][0] if rows else None

    async def block(self, room_id: str, user_id: str, now_ms: int) -> None:
        await self.db.execute("block_room", _BLOCK, room_id, user_id, now_ms)

    async def unblock(self, room_id: str) -> None:
        await self.db.execute("unblock_room", _UNBLOCK, room_id)
