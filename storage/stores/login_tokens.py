"""One-use login tokens (``login_tokens``), keyed by the token's SHA-256."""

from __future__ import annotations

from storage.engine import Transaction
from storage.host import StorageHost

_INSERT = "INSERT INTO login_tokens (token_hash, user_id, valid_until_ms) VALUES (?, ?, ?)"
_DELETE_EXPIRED = "DELETE FROM login_tokens WHERE valid_until_ms <= ?"
_SELECT = "SELECT user_id, valid_until_ms FROM login_tokens WHERE token_hash = ?"
_DELETE = "DELETE FROM login_tokens WHERE token_hash = ?"


class LoginTokenStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def add_token(self, token_hash: str, user_id: str, valid_until_ms: int, now_ms: int) -> None:
        """Store a new token, dropping expired ones in the same transaction so the table stays small."""

        def insert(txn: Transaction) -> None:
            txn.execute(_DELETE_EXPIRED, (now_ms,))
            txn.execute(_INSERT, (token_hash, user_id, valid_until_ms))

        await self.db.run_interaction("add_login_token", insert)

    async def consume_token(self, token_hash: str, now_ms: int) -> str | None:
        """The token's user, deleting the token, so it signs in at most once; None when unknown or expired.

        The row is deleted in the same transaction that reads it: of two logins racing with one token,
        only the one whose DELETE removed the row wins."""

        def consume(txn: Transaction) -> str | None:
            txn.execute(_SELECT, (token_hash,))
            row = txn.fetchone()
            if row is None:
                return None
            txn.execute(_DELETE, (token_hash,))
            if txn.rowcount != 1 or int(row[1]) <= now_ms:
                return None
            return str(row[0])

        return await self.db.run_interaction("consume_login_token", consume)
