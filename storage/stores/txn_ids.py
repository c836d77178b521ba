"""Client transaction IDs, so a retried send returns the first event (even after a restart)."""

from __future__ import annotations

from storage.engine import Transaction
from storage.host import StorageHost

_GET = "SELECT event_id FROM event_txn_ids WHERE txn_scope = ? AND txn_id = ?"
_INSERT = (
    "INSERT INTO event_txn_ids (txn_scope, txn_id, event_id, room_id, inserted_ts) VALUES (?, ?, ?, ?, ?)"
)


class TxnIdStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def get_event_id(self, scope: str, txn_id: str) -> str | None:
        rows = await self.db.execute("get_txn_event_id", _GET, scope, txn_id)
        return rows[0][0] if rows else None


def insert_txn_id_txn(txn: Transaction, scope: str, txn_id: str, event_id: str, room_id: str,
                      now_ms: int) -> None:
    txn.execute(_INSERT, (scope, txn_id, event_id, room_id, now_ms))
