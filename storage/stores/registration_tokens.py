"""The ``registration_tokens`` table (Synapse-compatible admin API semantics)."""

from __future__ import annotations

from typing import Any

import attrs

from storage.engine import Transaction
from storage.host import StorageHost
from storage.stores.storable import storable

INSERT_TOKEN = (
    "INSERT INTO registration_tokens (token, uses_allowed, completed, expiry_ms, created_ms)"
    " VALUES (?, ?, 0, ?, ?) ON CONFLICT (token) DO NOTHING"
)
SELECT_TOKEN = "SELECT token, uses_allowed, completed, expiry_ms FROM registration_tokens WHERE token = ?"
SELECT_TOKENS = "SELECT token, uses_allowed, completed, expiry_ms FROM registration_tokens ORDER BY token"
# Spend one use, only while uses remain and the token has not expired.
USE_TOKEN = (
    "UPDATE registration_tokens SET completed = completed + 1 WHERE token = ?"
    " AND (uses_allowed IS NULL OR completed < uses_allowed) AND (expiry_ms IS NULL OR expiry_ms > ?)"
)
DELETE_TOKEN = "DELETE FROM registration_tokens WHERE token = ?"
UPDATE_COLUMNS = {"uses_allowed": "uses_allowed", "expiry_time": "expiry_ms"}


@attrs.frozen
class RegistrationToken:
    token: str
    uses_allowed: int | None
    completed: int
    expiry_ms: int | None

    def is_usable(self, now_ms: int) -> bool:
        if self.expiry_ms is not None and self.expiry_ms <= now_ms:
            return False
        return self.uses_allowed is None or self.completed < self.uses_allowed

    def to_json(self) -> dict[str, Any]:
        """The admin API's view (``pending`` is always 0: uses are spent at registration)."""
        return {"token": self.token, "uses_allowed": self.uses_allowed, "pending": 0,
                "completed": self.completed, "expiry_time": self.expiry_ms}


def _record(row: tuple[Any, ...]) -> RegistrationToken:
    return RegistrationToken(row[0], row[1], int(row[2]), None if row[3] is None else int(row[3]))


class RegistrationTokenStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def create_token(self, token: str, uses_allowed: int | None, expiry_ms: int | None,
                           created_ms: int) -> bool:
        def insert(txn: Transaction) -> bool:
            txn.execute(INSERT_TOKEN, (token, uses_allowed, expiry_ms, created_ms))
            return txn.rowcount == 1

        return await self.db.run_interaction("create_registration_token", insert)

    async def get_token(self, token: str) -> RegistrationToken | None:
        if not storable(token):
            return None
        rows = await self.db.execute("get_registration_token", SELECT_TOKEN, token)
        return _record(rows[0]) if rows else None

    async def list_tokens(self) -> list[RegistrationToken]:
        rows = await self.db.execute("list_registration_tokens", SELECT_TOKENS)
        return [_record(row) for row in rows]

    async def use_token(self, token: str, now_ms: int) -> bool:
        """Spend one use; False if the token is unknown, used up or expired."""
        if not storable(token):
            return False

        def update(txn: Transaction) -> bool:
            txn.execute(USE_TOKEN, (token, now_ms))
            return txn.rowcount == 1

        return await self.db.run_interaction("use_registration_token", update)

    async def update_token(self, token: str, changes: dict[str, int | None]) -> RegistrationToken | None:
        """Set the named fields (admin API names: uses_allowed, expiry_time); None if no such token."""

        def update(txn: Transaction) -> RegistrationToken | None:
            for name, value in changes.items():
                txn.execute(f"UPDATE registration_tokens SET {UPDATE_COLUMNS[name]} = ? WHERE token = ?",
                            (value, token))
            txn.execute(SELECT_TOKEN, (token,))
            rows = txn.fetchall()
            return _record(rows[0]) if rows else None

        return await self.db.run_interaction("update_registration_token", update)

    async def delete_token(self, token: str) -> bool:
        if not storable(token):
            return False

        def delete(txn: Transaction) -> bool:
            txn.execute(DELETE_TOKEN, (token,))
            return txn.rowcount == 1

        return await self.db.run_interaction("delete_registration_token", delete)
