"""Short-lived tokens kept by their SHA-256 with a user and an expiry (login and OpenID tokens).

Both tables have the same columns (``token_hash``, ``user_id``, ``valid_until_ms``), so one base store
issues, looks up, consumes and expires them; a subclass only names its table."""

from __future__ import annotations

from typing import ClassVar

from storage.engine import Transaction
from storage.host import StorageHost

# Templates: ``{table}`` is the subclass's TABLE (a constant, never input).
_INSERT = "INSERT INTO {table} (token_hash, user_id, valid_until_ms) VALUES (?, ?, ?)"
_DELETE_EXPIRED = "DELETE FROM {table} WHERE valid_until_ms <= ?"
_SELECT_VALID = "SELECT user_id FROM {table} WHERE token_hash = ? AND valid_until_ms > ?"
_SELECT = "SELECT user_id, valid_until_ms FROM {table} WHERE token_hash = ?"
_DELETE = "DELETE FROM {table} WHERE token_hash = ?"


class HashedTokenStore:
    """A token table: subclasses set ``TABLE`` (and ``KIND``, which names the transactions)."""

    TABLE: ClassVar[str]
    KIND: ClassVar[str]

    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db
        table = self.TABLE
        self._insert = _INSERT.format(table=table)
        self._delete_expired = _DELETE_EXPIRED.format(table=table)
        self._select_valid = _SELECT_VALID.format(table=table)
        self._select = _SELECT.format(table=table)
        self._delete = _DELETE.format(table=table)

    async def add_token(self, token_hash: str, user_id: str, valid_until_ms: int, now_ms: int) -> None:
        """Store a new token, dropping expired ones in the same transaction so the table stays small."""

        def insert(txn: Transaction) -> None:
            txn.execute(self._delete_expired, (now_ms,))
            txn.execute(self._insert, (token_hash, user_id, valid_until_ms))

        await self.db.run_interaction(f"add_{self.KIND}_token", insert)

    async def get_user_for_token(self, token_hash: str, now_ms: int) -> str | None:
        """The token's user, or None when it is unknown or has expired; the token stays usable."""
        rows = await self.db.execute(f"get_{self.KIND}_token", self._select_valid, token_hash, now_ms)
        return str(rows[0][0]) if rows else None

    async def consume_token(self, token_hash: str, now_ms: int) -> str | None:
        """The token's user, deleting the token, so it is used at most once; None when unknown or expired.

        The row is deleted in the same transaction that reads it: of two requests racing with one token,
        only the one whose DELETE removed the row wins (an expired token is deleted too)."""

        def consume(txn: Transaction) -> str | None:
            txn.execute(self._select, (token_hash,))
            row = txn.fetchone()
            if row is None:
                return None
            txn.execute(self._delete, (token_hash,))
            if txn.rowcount != 1 or int(row[1]) <= now_ms:
                return None
            return str(row[0])

        return await self.db.run_interaction(f"consume_{self.KIND}_token", consume)
