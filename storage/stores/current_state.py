"""The current state of each room, one row per (type, state_key)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from storage.engine import Transaction
from storage.host import StorageHost

StateKey = tuple[str, str]

_ALL = "SELECT type, state_key, event_id FROM current_state_events WHERE room_id = ?"
_ONE = "SELECT event_id FROM current_state_events WHERE room_id = ? AND type = ? AND state_key = ?"
_BY_TYPE = "SELECT state_key, event_id FROM current_state_events WHERE room_id = ? AND type = ?"
_UPSERT = (
    "INSERT INTO current_state_events (room_id, type, state_key, event_id) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (room_id, type, state_key) DO UPDATE SET event_id = excluded.event_id"
)
_DELETE = "DELETE FROM current_state_events WHERE room_id = ? AND type = ? AND state_key = ?"


class CurrentStateStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def get_current_state_ids(self, room_id: str) -> dict[StateKey, str]:
        """The room's current state as {(type, state_key): event_id} (empty if unknown)."""
        rows = await self.db.execute("get_current_state_ids", _ALL, room_id)
        return {(row[0], row[1]): row[2] for row in rows}

    async def get_current_state_event_id(self, room_id: str, event_type: str,
                                         state_key: str = "") -> str | None:
        rows = await self.db.execute("get_current_state_event_id", _ONE, room_id, event_type, state_key)
        return rows[0][0] if rows else None

    async def get_current_state_ids_of_type(self, room_id: str, event_type: str) -> dict[str, str]:
        rows = await self.db.execute("get_current_state_of_type", _BY_TYPE, room_id, event_type)
        return {row[0]: row[1] for row in rows}


def update_current_state_txn(txn: Transaction, room_id: str, changes: Mapping[StateKey, str],
                             removed: Iterable[StateKey] = ()) -> None:
    """Apply a delta of the current state; ``removed`` keys left it (a state reset)."""
    txn.executemany(_DELETE, [(room_id, k[0], k[1]) for k in removed])
    txn.executemany(_UPSERT, [(room_id, k[0], k[1], v) for k, v in changes.items()])
