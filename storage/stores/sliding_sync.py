"""Sliding sync connection positions (``sliding_sync_positions``) and the rooms' bump stamps."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from typing import Any

import attrs

from storage.engine import Transaction
from storage.host import StorageHost

_INSERT = ("INSERT INTO sliding_sync_positions (pos, user_id, device_id, conn_id, token, state, created_ts)"
           " VALUES (?, ?, ?, ?, ?, ?, ?)")
_SELECT = ("SELECT token, state, created_ts FROM sliding_sync_positions"
           " WHERE pos = ? AND user_id = ? AND device_id = ? AND conn_id = ?")
_OLDEST_KEPT = ("SELECT created_ts FROM sliding_sync_positions WHERE user_id = ? AND device_id = ? AND conn_id = ?"
                " ORDER BY created_ts DESC LIMIT 1 OFFSET ?")
_DELETE_OLDER = ("DELETE FROM sliding_sync_positions WHERE user_id = ? AND device_id = ? AND conn_id = ?"
                 " AND created_ts < ?")
#: Positions a connection keeps: the newest, and a few a retrying client may still send.
KEEP = 5
#: The newest timeline event of each room (what bump_stamp orders by).
_BUMP = ("SELECT room_id, MAX(stream_ordering) FROM events WHERE room_id IN ({marks})"
         " AND outlier = 0 AND rejected = 0 AND soft_failed = 0 AND stream_ordering <= ? GROUP BY room_id")


@attrs.frozen
class Position:
    token: str
    state: dict[str, Any]
    created_ts: int


class SlidingSyncStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def get_position(self, pos: str, user_id: str, device_id: str, conn_id: str) -> Position | None:
        rows = await self.db.execute("get_sliding_sync_position", _SELECT, pos, user_id, device_id, conn_id)
        if not rows:
            return None
        return Position(rows[0][0], json.loads(rows[0][1]), int(rows[0][2]))

    async def add_position(self, user_id: str, device_id: str, conn_id: str, token: str,
                           state: dict[str, Any], now_ms: int) -> str:
        """A new position for the connection; its oldest positions beyond ``KEEP`` go."""
        pos = secrets.token_urlsafe(12)

        def insert(txn: Transaction) -> None:
            txn.execute(_INSERT, (pos, user_id, device_id, conn_id, token, json.dumps(state), now_ms))
            txn.execute(_OLDEST_KEPT, (user_id, device_id, conn_id, KEEP - 1))
            row = txn.fetchone()
            if row is not None:
                txn.execute(_DELETE_OLDER, (user_id, device_id, conn_id, int(row[0])))

        await self.db.run_interaction("add_sliding_sync_position", insert)
        return pos

    async def bump_stamps(self, room_ids: Iterable[str], upto: int) -> dict[str, int]:
        rooms = list(room_ids)
        if not rooms:
            return {}
        sql = _BUMP.format(marks=", ".join("?" for _ in rooms))
        rows = await self.db.execute("sliding_sync_bump_stamps", sql, *rooms, upto)
        return {row[0]: int(row[1]) for row in rows if row[1] is not None}
