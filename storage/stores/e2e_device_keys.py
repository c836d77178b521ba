"""The ``e2e_device_keys`` table: each device's identity keys (curve25519 + ed25519)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from storage.engine import Transaction
from storage.host import StorageHost

INSERT_DEVICE_KEYS = (
    "INSERT INTO e2e_device_keys (user_id, device_id, key_json, added_ms) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (user_id, device_id) DO NOTHING"
)
SELECT_DEVICE_KEYS = "SELECT key_json FROM e2e_device_keys WHERE user_id = ? AND device_id = ?"
UPDATE_DEVICE_KEYS = "UPDATE e2e_device_keys SET key_json = ?, added_ms = ? WHERE user_id = ? AND device_id = ?"
SELECT_USER_DEVICE_KEYS = "SELECT device_id, key_json FROM e2e_device_keys WHERE user_id = ?"
DELETE_DEVICE_KEYS = "DELETE FROM e2e_device_keys WHERE user_id = ? AND device_id = ?"


class E2eDeviceKeysStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def set_device_keys(self, user_id: str, device_id: str, keys: dict[str, Any],
                              now_ms: int) -> tuple[bool, dict[str, Any] | None]:
        """Store a device's keys, replacing any it had: (changed, the keys it had before).

        Insert, or read and replace, in one transaction: of two racing uploads one
        wins whole, and each caller learns what it replaced.
        """

        def store(txn: Transaction) -> tuple[bool, dict[str, Any] | None]:
            txn.execute(INSERT_DEVICE_KEYS, (user_id, device_id, json.dumps(keys), now_ms))
            if txn.rowcount == 1:
                return True, None
            txn.execute(SELECT_DEVICE_KEYS, (user_id, device_id))
            row = txn.fetchone()
            previous = json.loads(row[0]) if row else None
            if previous == keys:
                return False, previous
            txn.execute(UPDATE_DEVICE_KEYS, (json.dumps(keys), now_ms, user_id, device_id))
            return True, previous

        return await self.db.run_interaction("set_device_keys", store)

    async def get_device_keys(self, user_id: str, device_id: str) -> dict[str, Any] | None:
        rows = await self.db.execute("get_device_keys", SELECT_DEVICE_KEYS, user_id, device_id)
        return json.loads(rows[0][0]) if rows else None

    async def get_user_device_keys(self, user_ids: Iterable[str]) -> dict[str, dict[str, dict[str, Any]]]:
        """{user_id: {device_id: keys}} for every device of the given users that has keys."""
        wanted = list(dict.fromkeys(user_ids))

        def read(txn: Transaction) -> dict[str, dict[str, dict[str, Any]]]:
            found: dict[str, dict[str, dict[str, Any]]] = {}
            for user_id in wanted:
                txn.execute(SELECT_USER_DEVICE_KEYS, (user_id,))
                devices = {row[0]: json.loads(row[1]) for row in txn.fetchall()}
                if devices:
                    found[user_id] = devices
            return found

        return await self.db.run_interaction("get_user_device_keys", read)

    @staticmethod
    def delete_device_keys_txn(txn: Transaction, user_id: str, device_ids: list[str]) -> None:
        txn.executemany(DELETE_DEVICE_KEYS, [(user_id, device_id) for device_id in device_ids])
