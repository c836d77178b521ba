"""Cross-signing keys (``e2e_cross_signing_keys``) and key signatures (``e2e_signatures``).

Signatures are kept apart from the keys they sign, so that who may see which
signature can be decided per viewer when keys are queried.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import attrs

from storage.engine import Transaction
from storage.host import StorageHost

SELECT_USER_KEYS = "SELECT key_type, key_json FROM e2e_cross_signing_keys WHERE user_id = ?"
UPSERT_KEY = (
    "INSERT INTO e2e_cross_signing_keys (user_id, key_type, public_key, key_json, added_ms)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, key_type)"
    " DO UPDATE SET public_key = excluded.public_key, key_json = excluded.key_json,"
    " added_ms = excluded.added_ms"
)
UPSERT_SIGNATURE = (
    "INSERT INTO e2e_signatures (signer_user_id, signer_key_id, target_user_id, target_key_id, signature)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (target_user_id, target_key_id, signer_user_id, signer_key_id)"
    " DO UPDATE SET signature = excluded.signature"
)
SELECT_SIGNATURES_ON_USER = (
    "SELECT signer_user_id, signer_key_id, target_key_id, signature FROM e2e_signatures"
    " WHERE target_user_id = ?"
)
DELETE_SIGNATURES_ON_TARGET = "DELETE FROM e2e_signatures WHERE target_user_id = ? AND target_key_id = ?"
DELETE_SIGNATURES_BY_SIGNER_KEY = "DELETE FROM e2e_signatures WHERE signer_user_id = ? AND signer_key_id = ?"


@attrs.frozen
class Signature:
    signer_user_id: str
    signer_key_id: str  # e.g. "ed25519:<public key>" or "ed25519:<device id>"
    target_user_id: str
    target_key_id: str  # a device id, or a cross-signing public key
    signature: str


class E2eCrossSigningStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def get_cross_signing_keys(self, user_ids: Iterable[str]) -> dict[str, dict[str, dict[str, Any]]]:
        """{user_id: {key_type: key}} for users who have any cross-signing keys."""
        wanted = list(dict.fromkeys(user_ids))

        def read(txn: Transaction) -> dict[str, dict[str, dict[str, Any]]]:
            found: dict[str, dict[str, dict[str, Any]]] = {}
            for user_id in wanted:
                txn.execute(SELECT_USER_KEYS, (user_id,))
                keys = {row[0]: json.loads(row[1]) for row in txn.fetchall()}
                if keys:
                    found[user_id] = keys
            return found

        return await self.db.run_interaction("get_cross_signing_keys", read)

    async def set_cross_signing_keys(self, user_id: str, keys: dict[str, tuple[str, dict[str, Any]]],
                                     replaced_public_keys: list[str], now_ms: int) -> None:
        """Store {key_type: (public_key, key)}; forget signatures made by or on replaced keys."""

        def store(txn: Transaction) -> None:
            for public_key in replaced_public_keys:
                txn.execute(DELETE_SIGNATURES_BY_SIGNER_KEY, (user_id, f"ed25519:{public_key}"))
                txn.execute(DELETE_SIGNATURES_ON_TARGET, (user_id, public_key))
            for key_type, (public_key, key) in keys.items():
                txn.execute(UPSERT_KEY, (user_id, key_type, public_key, json.dumps(key), now_ms))

        await self.db.run_interaction("set_cross_signing_keys", store)

    async def add_signatures(self, signatures: list[Signature]) -> None:
        def store(txn: Transaction) -> None:
            txn.executemany(UPSERT_SIGNATURE, [
                (s.signer_user_id, s.signer_key_id, s.target_user_id, s.target_key_id, s.signature)
                for s in signatures
            ])

        await self.db.run_interaction("add_signatures", store)

    async def get_signatures_on_users(self, user_ids: Iterable[str]) -> list[Signature]:
        """Every stored signature over any key of these users."""
        wanted = list(dict.fromkeys(user_ids))

        def read(txn: Transaction) -> list[Signature]:
            found: list[Signature] = []
            for user_id in wanted:
                txn.execute(SELECT_SIGNATURES_ON_USER, (user_id,))
                found.extend(Signature(row[0], row[1], user_id, row[2], row[3]) for row in txn.fetchall())
            return found

        return await self.db.run_interaction("get_signatures_on_users", read)

    @staticmethod
    def delete_device_signatures_txn(txn: Transaction, user_id: str, device_ids: Iterable[str]) -> None:
        """A deleted device's signatures go with it: those on it and those it made."""
        for device_id in device_ids:
            txn.execute(DELETE_SIGNATURES_ON_TARGET, (user_id, device_id))
            txn.execute(DELETE_SIGNATURES_BY_SIGNER_KEY, (user_id, f"ed25519:{device_id}"))
