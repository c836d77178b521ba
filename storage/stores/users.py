"""The ``users`` table: who exists, their password hash, and their flags."""

from __future__ import annotations

from typing import Any

import attrs

from storage.engine import Transaction
from storage.host import StorageHost
from storage.stores.profiles import create_profile_txn
from storage.stores.storable import storable

INSERT_USER = (
    "INSERT INTO users (user_id, password_hash, created_ms, is_admin, is_guest, deactivated)"
    " VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT (user_id) DO NOTHING"
)
SELECT_USER = (
    "SELECT user_id, password_hash, created_ms, is_admin, is_guest, deactivated, shadow_banned"
    " FROM users WHERE user_id = ?"
)
UPDATE_PASSWORD = "UPDATE users SET password_hash = ? WHERE user_id = ?"
UPDATE_DEACTIVATED = "UPDATE users SET deactivated = ? WHERE user_id = ?"
UPDATE_ADMIN = "UPDATE users SET is_admin = ? WHERE user_id = ?"
UPDATE_SHADOW_BANNED = "UPDATE users SET shadow_banned = ? WHERE user_id = ?"
SELECT_LOCAL_USER_IDS = "SELECT user_id FROM users WHERE deactivated = 0 AND is_guest = 0"


@attrs.frozen
class UserRecord:
    user_id: str
    password_hash: str | None
    created_ms: int
    is_admin: bool
    is_guest: bool
    deactivated: bool
    shadow_banned: bool = False


def _record(row: tuple[Any, ...]) -> UserRecord:
    return UserRecord(row[0], row[1], int(row[2]), bool(row[3]), bool(row[4]), bool(row[5]), bool(row[6]))


class UserStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def create_user(self, user_id: str, password_hash: str | None, created_ms: int,
                          is_admin: bool = False, is_guest: bool = False,
                          displayname: str | None = None) -> bool:
        """Insert a user and their profile together; False (and no change) when the id is taken.

        One transaction, so there is never a user without a profile.
        """

        def insert(txn: Transaction) -> bool:
            txn.execute(INSERT_USER, (user_id, password_hash, created_ms, int(is_admin), int(is_guest)))
            if txn.rowcount != 1:
                return False
            create_profile_txn(txn, user_id, displayname)
            return True

        return await self.db.run_interaction("create_user", insert)

    async def get_user(self, user_id: str) -> UserRecord | None:
        if not storable(user_id):
            return None
        rows = await self.db.execute("get_user", SELECT_USER, user_id)
        return _record(rows[0]) if rows else None

    async def user_exists(self, user_id: str) -> bool:
        return await self.get_user(user_id) is not None

    async def set_password_hash(self, user_id: str, password_hash: str | None) -> None:
        await self.db.execute("set_password_hash", UPDATE_PASSWORD, password_hash, user_id)

    async def set_deactivated(self, user_id: str, deactivated: bool) -> None:
        await self.db.execute("set_deactivated", UPDATE_DEACTIVATED, int(deactivated), user_id)

    async def set_admin(self, user_id: str, is_admin: bool) -> None:
        await self.db.execute("set_admin", UPDATE_ADMIN, int(is_admin), user_id)

    async def set_shadow_banned(self, user_id: str, banned: bool) -> None:
        await self.db.execute("set_shadow_banned", UPDATE_SHADOW_BANNED, int(banned), user_id)

    async def get_active_local_user_ids(self) -> list[str]:
        rows = await self.db.execute("get_active_local_user_ids", SELECT_LOCAL_USER_IDS)
        return [row[0] for row in rows]
