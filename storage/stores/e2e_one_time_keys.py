"""The ``e2e_one_time_keys`` table: keys a device published so others can start Olm sessions.

Each key is handed out exactly once. On PostgreSQL the pick-and-delete is one
``DELETE ... RETURNING`` over a ``FOR UPDATE SKIP LOCKED`` row, so concurrent
claimers never share a key (a claimer that loses a race is retried by the
engine); on SQLite every transaction is serialised, so select-then-delete is
already atomic.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import attrs

from storage.engine import Transaction
from storage.host import StorageHost

SELECT_KEYS_BY_ID = (
    "SELECT key_json FROM e2e_one_time_keys"
    " WHERE user_id = ? AND device_id = ? AND algorithm = ? AND key_id = ?"
)
SELECT_MAX_SEQ = "SELECT MAX(upload_seq) FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ?"
INSERT_KEY = (
    "INSERT INTO e2e_one_time_keys (user_id, device_id, algorithm, key_id, key_json, upload_seq)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, device_id, algorithm, key_id) DO NOTHING"
)
COUNT_KEYS = (
    "SELECT algorithm, COUNT(*) FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ?"
    " GROUP BY algorithm"
)
CLAIM_KEY_POSTGRES = (
    "DELETE FROM e2e_one_time_keys WHERE (user_id, device_id, algorithm, key_id) IN ("
    " SELECT user_id, device_id, algorithm, key_id FROM e2e_one_time_keys"
    " WHERE user_id = ? AND device_id = ? AND algorithm = ?"
    " ORDER BY upload_seq, key_id LIMIT 1 FOR UPDATE SKIP LOCKED)"
    " RETURNING key_id, key_json"
)
SELECT_OLDEST_KEY = (
    "SELECT key_id, key_json FROM e2e_one_time_keys"
    " WHERE user_id = ? AND device_id = ? AND algorithm = ? ORDER BY upload_seq, key_id LIMIT 1"
)
DELETE_KEY = (
    "DELETE FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ? AND algorithm = ? AND key_id = ?"
)
DELETE_DEVICE_KEYS = "DELETE FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ?"


@attrs.frozen
class OneTimeKey:
    algorithm: str
    key_id: str
    key: Any  # a string (curve25519) or a signed object (signed_curve25519)


@attrs.frozen
class ClaimedKey:
    user_id: str
    device_id: str
    algorithm: str
    key_id: str
    key: Any
    fallback: bool


def claim_one_time_key_txn(txn: Transaction, user_id: str, device_id: str, algorithm: str) -> ClaimedKey | None:
    """Remove and return the device's oldest one-time key of this algorithm."""
    if txn.engine_name == "psycopg2":
        txn.execute(CLAIM_KEY_POSTGRES, (user_id, device_id, algorithm))
        row = txn.fetchone()
    else:
        txn.execute(SELECT_OLDEST_KEY, (user_id, device_id, algorithm))
        row = txn.fetchone()
        if row is not None:
            txn.execute(DELETE_KEY, (user_id, device_id, algorithm, row[0]))
    if row is None:
        return None
    return ClaimedKey(user_id, device_id, algorithm, row[0], json.loads(row[1]), fallback=False)


#: Devices whose key counts stay in memory (every sync of the device reads them); then cleared.
MAX_CACHED_DEVICES = 100_000


class DeviceAnswers:
    """Per-device answers kept until a write to the device's keys (``forget``, after its commit);
    a read that straddles a write is not kept."""

    def __init__(self) -> None:
        self.found: dict[tuple[str, str], Any] = {}
        self.generation = 0
        #: Off in a worker process: the writes that would drop an answer happen in another process.
        self.enabled = True

    def forget(self, user_id: str, device_ids: Iterable[str]) -> None:
        self.generation += 1
        for device_id in device_ids:
            self.found.pop((user_id, device_id), None)

    def keep(self, key: tuple[str, str], generation: int, value: Any) -> None:
        if self.enabled and generation == self.generation:
            if len(self.found) >= MAX_CACHED_DEVICES:
                self.found.clear()
            self.found[key] = value


class E2eOneTimeKeysStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db
        self.counts = DeviceAnswers()

    async def add_one_time_keys(self, user_id: str, device_id: str, keys: list[OneTimeKey]) -> list[OneTimeKey]:
        """Store new keys in the given order; return those whose id exists with DIFFERENT content.

        Re-sending an identical key is harmless (clients retry uploads); a
        conflicting one is refused as a whole, before anything is written.
        """

        def store(txn: Transaction) -> list[OneTimeKey]:
            conflicts: list[OneTimeKey] = []
            fresh: list[OneTimeKey] = []
            for key in keys:
                txn.execute(SELECT_KEYS_BY_ID, (user_id, device_id, key.algorithm, key.key_id))
                row = txn.fetchone()
                if row is None:
                    fresh.append(key)
                elif json.loads(row[0]) != key.key:
                    conflicts.append(key)
            if conflicts or not fresh:
                return conflicts
            txn.execute(SELECT_MAX_SEQ, (user_id, device_id))
            row = txn.fetchone()
            first_seq = (row[0] if row and row[0] is not None else 0) + 1
            txn.executemany(INSERT_KEY, [
                (user_id, device_id, key.algorithm, key.key_id, json.dumps(key.key), first_seq + index)
                for index, key in enumerate(fresh)
            ])
            return []

        try:
            return await self.db.run_interaction("add_one_time_keys", store)
        finally:
            self.counts.forget(user_id, [device_id])

    async def count_one_time_keys(self, user_id: str, device_id: str) -> dict[str, int]:
        cached = self.counts.found.get((user_id, device_id))
        if cached is not None:
            return dict(cached)
        generation = self.counts.generation
        rows = await self.db.execute("count_one_time_keys", COUNT_KEYS, user_id, device_id)
        found = {row[0]: int(row[1]) for row in rows}
        self.counts.keep((user_id, device_id), generation, found)
        return dict(found)

    @staticmethod
    def delete_device_keys_txn(txn: Transaction, user_id: str, device_ids: Iterable[str]) -> None:
        txn.executemany(DELETE_DEVICE_KEYS, [(user_id, device_id) for device_id in device_ids])

