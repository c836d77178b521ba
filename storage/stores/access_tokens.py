"""Access and refresh tokens, stored only as SHA-256 hashes.

Every authenticated request looks its token up here, so lookups are cached in
memory; any revocation for a user drops that user's cached entries at once
(one process today; a multi-worker setup would broadcast the invalidation).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Iterable

import attrs

from storage.cache_stats import cache_stats
from storage.engine import Transaction
from storage.host import StorageHost
from storage.stores.storable import storable

SELECT_ACCESS_TOKEN = (
    "SELECT t.id, t.token_hash, t.user_id, t.device_id, t.valid_until_ms,"
    " u.is_admin, u.is_guest, u.deactivated, u.shadow_banned"
    " FROM access_tokens t JOIN users u ON u.user_id = t.user_id WHERE t.token_hash = ?"
)
INSERT_ACCESS_TOKEN = (
    "INSERT INTO access_tokens (id, token_hash, user_id, device_id, created_ms, valid_until_ms,"
    " refresh_token_id) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
DELETE_ACCESS_TOKEN = "DELETE FROM access_tokens WHERE id = ?"
DELETE_USER_ACCESS_TOKENS = "DELETE FROM access_tokens WHERE user_id = ? AND id <> ?"
DELETE_DEVICE_ACCESS_TOKENS = "DELETE FROM access_tokens WHERE user_id = ? AND device_id = ? AND id <> ?"
INSERT_REFRESH_TOKEN = (
    "INSERT INTO refresh_tokens (id, token_hash, user_id, device_id, created_ms) VALUES (?, ?, ?, ?, ?)"
)
SELECT_REFRESH_TOKEN = "SELECT id, token_hash, user_id, device_id FROM refresh_tokens WHERE token_hash = ?"
DELETE_REFRESH_TOKEN = "DELETE FROM refresh_tokens WHERE id = ?"
DELETE_USER_REFRESH_TOKENS = "DELETE FROM refresh_tokens WHERE user_id = ?"
DELETE_DEVICE_REFRESH_TOKENS = "DELETE FROM refresh_tokens WHERE user_id = ? AND device_id = ?"

CACHE_LIMIT = 50_000
_NO_TOKEN = -1  # "except this token id": an id we never allocate (ids are positive)


@attrs.frozen
class AccessTokenInfo:
    token_id: int
    token_hash: str
    user_id: str
    device_id: str | None
    valid_until_ms: int | None
    is_admin: bool
    is_guest: bool
    deactivated: bool
    shadow_banned: bool = False


@attrs.frozen
class RefreshTokenInfo:
    token_id: int
    token_hash: str
    user_id: str
    device_id: str


def new_token_id() -> int:
    """A random positive 62-bit id: no sequence needed, portable across engines."""
    return secrets.randbits(62) + 1


class AccessTokenStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db
        self._cache: dict[str, AccessTokenInfo] = {}
        self.cache_stats = cache_stats("get_access_token", self._cache)
        self._cached_by_user: dict[str, set[str]] = {}
        self._generation = 0  # bumped by every invalidation
        self._invalidation_listeners: list[Callable[[str], None]] = []

    async def get_access_token(self, token_hash: str) -> AccessTokenInfo | None:
        cached = self._cache.get(token_hash)
        self.cache_stats.count(cached is not None)
        if cached is not None:
            return cached
        generation = self._generation
        rows = await self.db.execute("get_access_token", SELECT_ACCESS_TOKEN, token_hash)
        if not rows:
            return None
        row = rows[0]
        # The index found the row; compare in constant time anyway so the check never
        # depends on how the database compares strings.
        if not hmac.compare_digest(str(row[1]), token_hash):
            return None
        info = AccessTokenInfo(int(row[0]), row[1], row[2], row[3],
                               None if row[4] is None else int(row[4]),
                               bool(row[5]), bool(row[6]), bool(row[7]), bool(row[8]))
        # A revocation that ran while we read may have deleted this very row after we saw
        # it; caching the stale row would resurrect the token, so only cache if none did.
        if generation == self._generation:
            self._remember(info)
        return info

    def _remember(self, info: AccessTokenInfo) -> None:
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
            self._cached_by_user.clear()
        self._cache[info.token_hash] = info
        self._cached_by_user.setdefault(info.user_id, set()).add(info.token_hash)

    def add_invalidation_listener(self, listener: Callable[[str], None]) -> None:
        """Hear every local invalidation (replication tells the other processes: a token
        revoked on one must stop working on all)."""
        self._invalidation_listeners.append(listener)

    def invalidate_user(self, user_id: str, *, replicated: bool = False) -> None:
        """Forget cached lookups for a user (after revoking tokens or changing their flags);
        ``replicated`` when another process did it (not passed on again)."""
        self._generation += 1
        for token_hash in self._cached_by_user.pop(user_id, set()):
            self._cache.pop(token_hash, None)
        if not replicated:
            for listener in self._invalidation_listeners:
                listener(user_id)

    async def add_access_token(self, token_hash: str, user_id: str, device_id: str | None,
                               created_ms: int, valid_until_ms: int | None = None,
                               refresh_token_id: int | None = None) -> int:
        token_id = new_token_id()
        await self.db.execute("add_access_token", INSERT_ACCESS_TOKEN, token_id, token_hash, user_id,
                              device_id, created_ms, valid_until_ms, refresh_token_id)
        return token_id

    async def delete_access_token(self, user_id: str, token_id: int) -> None:
        try:
            await self.db.execute("delete_access_token", DELETE_ACCESS_TOKEN, token_id)
        finally:
            self.invalidate_user(user_id)

    async def delete_user_tokens(self, user_id: str, except_token_id: int | None = None) -> None:
        """Revoke every access and refresh token of a user, optionally sparing one access token."""

        def delete(txn: Transaction) -> None:
            txn.execute(DELETE_USER_ACCESS_TOKENS, (user_id, except_token_id or _NO_TOKEN))
            if except_token_id is None:
                txn.execute(DELETE_USER_REFRESH_TOKENS, (user_id,))

        try:
            await self.db.run_interaction("delete_user_tokens", delete)
        finally:
            self.invalidate_user(user_id)

    async def delete_device_tokens(self, user_id: str, device_ids: Iterable[str],
                                   except_token_id: int | None = None) -> None:
        """Revoke the access and refresh tokens of some devices of a user."""
        ids = [device_id for device_id in device_ids if storable(device_id)]

        def delete(txn: Transaction) -> None:
            spare = except_token_id or _NO_TOKEN
            txn.executemany(DELETE_DEVICE_ACCESS_TOKENS, [(user_id, d, spare) for d in ids])
            txn.executemany(DELETE_DEVICE_REFRESH_TOKENS, [(user_id, d) for d in ids])

        try:
            await self.db.run_interaction("delete_device_tokens", delete)
        finally:
            self.invalidate_user(user_id)

    async def add_refresh_token(self, token_hash: str, user_id: str, device_id: str, created_ms: int) -> int:
        token_id = new_token_id()
        await self.db.execute("add_refresh_token", INSERT_REFRESH_TOKEN, token_id, token_hash, user_id,
                              device_id, created_ms)
        return token_id

    async def get_refresh_token(self, token_hash: str) -> RefreshTokenInfo | None:
        rows = await self.db.execute("get_refresh_token", SELECT_REFRESH_TOKEN, token_hash)
        if not rows or not hmac.compare_digest(str(rows[0][1]), token_hash):
            return None
        row = rows[0]
        return RefreshTokenInfo(int(row[0]), row[1], row[2], row[3])

    async def consume_refresh_token(self, token_id: int) -> bool:
        """Delete a refresh token; False if it was already gone (used twice, or raced)."""

        def delete(txn: Transaction) -> bool:
            txn.execute(DELETE_REFRESH_TOKEN, (token_id,))
            return txn.rowcount == 1

        return await self.db.run_interaction("consume_refresh_token", delete)
