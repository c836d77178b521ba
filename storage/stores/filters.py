"""The ``user_filters`` table: filters a client saved with POST /user/{userId}/filter."""

from __future__ import annotations

import json
from typing import Any

from storage.engine import Transaction
from storage.host import StorageHost

SELECT_FILTER = "SELECT filter_json FROM user_filters WHERE user_id = ? AND filter_id = ?"
SELECT_SAME_FILTER = "SELECT filter_id FROM user_filters WHERE user_id = ? AND filter_json = ?"
SELECT_MAX_ID = "SELECT MAX(filter_id) FROM user_filters WHERE user_id = ?"
INSERT_FILTER = (
    "INSERT INTO user_filters (user_id, filter_id, filter_json) VALUES (?, ?, ?)"
    " ON CONFLICT (user_id, filter_id) DO NOTHING"
)


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class FilterStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def add_filter(self, user_id: str, filter_json: dict[str, Any]) -> int:
        """Save a filter and return its id; the same JSON saved twice keeps one id."""
        text = canonical(filter_json)

        def insert(txn: Transaction) -> int:
            txn.execute(SELECT_SAME_FILTER, (user_id, text))
            row = txn.fetchone()
            if row is not None:
                return int(row[0])
            # Ids are per user; a concurrent insert of the same id is skipped by
            # ON CONFLICT and we try the next one, so no id is ever shared.
            txn.execute(SELECT_MAX_ID, (user_id,))
            top = txn.fetchone()
            filter_id = 0 if top is None or top[0] is None else int(top[0]) + 1
            while True:
                txn.execute(INSERT_FILTER, (user_id, filter_id, text))
                if txn.rowcount == 1:
                    return filter_id
                filter_id += 1

        return await self.db.run_interaction("add_filter", insert)

    async def get_filter(self, user_id: str, filter_id: int) -> dict[str, Any] | None:
        rows = await self.db.execute("get_filter", SELECT_FILTER, user_id, filter_id)
        return json.loads(rows[0][0]) if rows else None
