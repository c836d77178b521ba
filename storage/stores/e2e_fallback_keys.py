"""The ``e2e_fallback_keys`` table (MSC2732): one key per algorithm a device can always hand out.

A fallback key is returned by /keys/claim only when the device has no one-time
key left; it is then marked used but stays claimable until the device uploads a
replacement, and sync tells the device which algorithms still have an unused one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from storage.engine import Transaction
from storage.host import StorageHost
from storage.stores.e2e_one_time_keys import (
    ClaimedKey,
    DeviceAnswers,
    E2eOneTimeKeysStore,
    OneTimeKey,
    claim_one_time_key_txn,
)

SELECT_FALLBACK = (
    "SELECT key_id, key_json FROM e2e_fallback_keys WHERE user_id = ? AND device_id = ? AND algorithm = ?"
)
UPSERT_FALLBACK = (
    "INSERT INTO e2e_fallback_keys (user_id, device_id, algorithm, key_id, key_json, used)"
    " VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT (user_id, device_id, algorithm)"
    " DO UPDATE SET key_id = excluded.key_id, key_json = excluded.key_json, used = 0"
)
MARK_USED = "UPDATE e2e_fallback_keys SET used = 1 WHERE user_id = ? AND device_id = ? AND algorithm = ?"
SELECT_UNUSED_ALGORITHMS = (
    "SELECT algorithm FROM e2e_fallback_keys WHERE user_id = ? AND device_id = ? AND used = 0"
    " ORDER BY algorithm"
)
DELETE_DEVICE_FALLBACK_KEYS = "DELETE FROM e2e_fallback_keys WHERE user_id = ? AND device_id = ?"


def claim_fallback_key_txn(txn: Transaction, user_id: str, device_id: str, algorithm: str) -> ClaimedKey | None:
    txn.execute(SELECT_FALLBACK, (user_id, device_id, algorithm))
    row = txn.fetchone()
    if row is None:
        return None
    txn.execute(MARK_USED, (user_id, device_id, algorithm))
    return ClaimedKey(user_id, device_id, algorithm, row[0], json.loads(row[1]), fallback=True)


class E2eFallbackKeysStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db
        self.unused = DeviceAnswers()
        self.one_time: E2eOneTimeKeysStore = hs.get(E2eOneTimeKeysStore)

    def forget(self, user_id: str, device_ids: Iterable[str]) -> None:
        """Both key stores' cached answers for these devices (their keys just changed)."""
        device_ids = list(device_ids)
        self.unused.forget(user_id, device_ids)
        self.one_time.counts.forget(user_id, device_ids)

    async def claim_keys(self, wanted: list[tuple[str, str, str]],
                         on_claimed: Callable[[Transaction, list[ClaimedKey]], None] | None = None,
                         ) -> list[ClaimedKey]:
        """Claim one key per (user_id, device_id, algorithm): a one-time key, else the fallback key.

        One transaction for the whole request, so a failure hands out nothing;
        ``on_claimed`` writes what must go with the claim (MLS KeyPackageRefs) in it.
        """

        def claim(txn: Transaction) -> list[ClaimedKey]:
            claimed: list[ClaimedKey] = []
            for user_id, device_id, algorithm in wanted:
                key = claim_one_time_key_txn(txn, user_id, device_id, algorithm)
                if key is None:
                    key = claim_fallback_key_txn(txn, user_id, device_id, algorithm)
                if key is not None:
                    claimed.append(key)
            if on_claimed is not None:
                on_claimed(txn, claimed)
            return claimed

        try:
            return await self.db.run_interaction("claim_e2e_keys", claim)
        finally:
            for user_id, device_id, _algorithm in wanted:
                self.forget(user_id, [device_id])

    async def set_fallback_keys(self, user_id: str, device_id: str, keys: list[OneTimeKey]) -> None:
        """Replace the fallback key of each algorithm; re-uploading the same key keeps its used flag."""

        def store(txn: Transaction) -> None:
            for key in keys:
                txn.execute(SELECT_FALLBACK, (user_id, device_id, key.algorithm))
                row = txn.fetchone()
                if row is not None and row[0] == key.key_id and json.loads(row[1]) == key.key:
                    continue
                txn.execute(UPSERT_FALLBACK, (user_id, device_id, key.algorithm, key.key_id, json.dumps(key.key)))

        try:
            await self.db.run_interaction("set_fallback_keys", store)
        finally:
            self.unused.forget(user_id, [device_id])

    async def unused_fallback_key_types(self, user_id: str, device_id: str) -> list[str]:
        cached = self.unused.found.get((user_id, device_id))
        if cached is not None:
            return list(cached)
        generation = self.unused.generation
        rows = await self.db.execute("unused_fallback_key_types", SELECT_UNUSED_ALGORITHMS, user_id, device_id)
        found = [row[0] for row in rows]
        self.unused.keep((user_id, device_id), generation, found)
        return list(found)

    @staticmethod
    def delete_device_keys_txn(txn: Transaction, user_id: str, device_ids: Iterable[str]) -> None:
        txn.executemany(DELETE_DEVICE_FALLBACK_KEYS, [(user_id, device_id) for device_id in device_ids])
