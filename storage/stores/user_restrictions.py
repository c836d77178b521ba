"""Locked and suspended accounts (``user_restrictions``), read on every authenticated request and
so kept in memory: the whole table (only accounts an admin acted on) is loaded once, and each
change updates the copy after its commit."""

from __future__ import annotations

from storage.engine import Transaction
from storage.host import StorageHost

_SELECT_ALL = "SELECT user_id, locked, suspended FROM user_restrictions WHERE locked = 1 OR suspended = 1"
_UPSERT = {
    "locked": ("INSERT INTO user_restrictions (user_id, locked, suspended, updated_ts) VALUES (?, ?, 0, ?)"
               " ON CONFLICT (user_id) DO UPDATE SET locked = excluded.locked, updated_ts = excluded.updated_ts"),
    "suspended": ("INSERT INTO user_restrictions (user_id, locked, suspended, updated_ts) VALUES (?, 0, ?, ?)"
                  " ON CONFLICT (user_id) DO UPDATE SET suspended = excluded.suspended,"
                  " updated_ts = excluded.updated_ts"),
}


class UserRestrictionsStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db
        self._locked: set[str] | None = None
        self._suspended: set[str] = set()

    async def _load(self) -> None:
        if self._locked is None:
            rows = await self.db.execute("load_user_restrictions", _SELECT_ALL)
            self._locked = {row[0] for row in rows if row[1]}
            self._suspended = {row[0] for row in rows if row[2]}

    async def is_locked(self, user_id: str) -> bool:
        await self._load()
        assert self._locked is not None
        return user_id in self._locked

    async def is_suspended(self, user_id: str) -> bool:
        await self._load()
        return user_id in self._suspended

    async def set_flag(self, user_id: str, flag: str, value: bool, now_ms: int) -> None:
        """Set ``locked`` or ``suspended``."""
        await self._load()

        def write(txn: Transaction) -> None:
            txn.execute(_UPSERT[flag], (user_id, int(value), now_ms))

        await self.db.run_interaction(f"set_user_{flag}", write)
        target = self._locked if flag == "locked" else self._suspended
        assert target is not None
        (target.add if value else target.discard)(user_id)
