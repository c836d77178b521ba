"""OpenID tokens (``openid_tokens``): whose a token is and until when, keyed by the token's SHA-256."""

from __future__ import annotations

from storage.engine import Transaction
from storage.host import StorageHost

_INSERT = "INSERT INTO openid_tokens (token_hash, user_id, valid_until_ms) VALUES (?, ?, ?)"
_DELETE_EXPIRED = "DELETE FROM openid_tokens WHERE valid_until_ms <= ?"
_SELECT = "SELECT user_id FROM openid_tokens WHERE token_hash = ? AND valid_until_ms > ?"


class OpenIdTokenStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def add_token(self, token_hash: str, user_id: str, valid_until_ms: int, now_ms: int) -> None:
        """Store a new token, dropping expired ones in the same transaction so the table stays small."""

        def insert(txn: Transaction) -> None:
            txn.execute(_DELETE_EXPIRED, (now_ms,))
            txn.execute(_INSERT, (token_hash, user_id, valid_until_ms))

        await self.db.run_interaction("add_openid_token", insert)

    async def get_user_for_token(self, token_hash: str, now_ms: int) -> str | None:
        """The token's user, or None when it is unknown or has expired."""
        rows = await self.db.execute("get_openid_token", _SELECT, token_hash, now_ms)
        return str(rows[0][0]) if rows else None
