"""Server-side key backup: ``e2e_room_key_versions`` and the ``e2e_room_keys`` in them.

Which copy of a session key is kept when a client uploads another is decided
by the caller's ``should_replace`` inside the same transaction as the write.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import attrs

from storage.engine import Transaction
from storage.host import StorageHost

SELECT_LATEST_VERSION = (
    "SELECT version, algorithm, auth_data, etag FROM e2e_room_key_versions"
    " WHERE user_id = ? AND deleted = 0 ORDER BY version DESC LIMIT 1"
)
SELECT_VERSION = (
    "SELECT version, algorithm, auth_data, etag FROM e2e_room_key_versions"
    " WHERE user_id = ? AND version = ? AND deleted = 0"
)
SELECT_MAX_VERSION = "SELECT MAX(version) FROM e2e_room_key_versions WHERE user_id = ?"
INSERT_VERSION = (
    "INSERT INTO e2e_room_key_versions (user_id, version, algorithm, auth_data, etag, deleted)"
    " VALUES (?, ?, ?, ?, 0, 0)"
)
UPDATE_VERSION = (
    "UPDATE e2e_room_key_versions SET auth_data = ? WHERE user_id = ? AND version = ? AND deleted = 0"
)
MARK_VERSION_DELETED = "UPDATE e2e_room_key_versions SET deleted = 1 WHERE user_id = ? AND version = ?"
BUMP_ETAG = "UPDATE e2e_room_key_versions SET etag = etag + 1 WHERE user_id = ? AND version = ?"
COUNT_KEYS = "SELECT COUNT(*) FROM e2e_room_keys WHERE user_id = ? AND version = ?"
SELECT_KEY = (
    "SELECT first_message_index, forwarded_count, is_verified, session_data FROM e2e_room_keys"
    " WHERE user_id = ? AND version = ? AND room_id = ? AND session_id = ?"
)
UPSERT_KEY = (
    "INSERT INTO e2e_room_keys (user_id, version, room_id, session_id, first_message_index,"
    " forwarded_count, is_verified, session_data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (user_id, version, room_id, session_id) DO UPDATE SET"
    " first_message_index = excluded.first_message_index, forwarded_count = excluded.forwarded_count,"
    " is_verified = excluded.is_verified, session_data = excluded.session_data"
)
SELECT_KEYS = (
    "SELECT room_id, session_id, first_message_index, forwarded_count, is_verified, session_data"
    " FROM e2e_room_keys WHERE user_id = ? AND version = ?"
)
DELETE_KEYS = "DELETE FROM e2e_room_keys WHERE user_id = ? AND version = ?"


@attrs.frozen
class BackupVersion:
    version: int
    algorithm: str
    auth_data: dict[str, Any]
    etag: int


@attrs.frozen
class RoomKey:
    first_message_index: int
    forwarded_count: int
    is_verified: bool
    session_data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "first_message_index": self.first_message_index,
            "forwarded_count": self.forwarded_count,
            "is_verified": self.is_verified,
            "session_data": self.session_data,
        }


# (room_id, session_id) -> key; None for either part means "all".
KeySelector = tuple[str | None, str | None]


def _version(row: tuple[Any, ...]) -> BackupVersion:
    return BackupVersion(int(row[0]), row[1], json.loads(row[2]), int(row[3]))


def _selector_clause(selector: KeySelector) -> tuple[str, list[str]]:
    """The extra WHERE terms narrowing a backup to one room or one session."""
    room_id, session_id = selector
    where, args = "", []
    if room_id is not None:
        where += " AND room_id = ?"
        args.append(room_id)
    if session_id is not None:
        where += " AND session_id = ?"
        args.append(session_id)
    return where, args


def _select_keys(txn: Transaction, user_id: str, version: int,
                 selector: KeySelector) -> dict[tuple[str, str], RoomKey]:
    where, args = _selector_clause(selector)
    txn.execute(SELECT_KEYS + where, [user_id, version, *args])
    return {
        (row[0], row[1]): RoomKey(int(row[2]), int(row[3]), bool(row[4]), json.loads(row[5]))
        for row in txn.fetchall()
    }


def _count(txn: Transaction, user_id: str, version: int) -> int:
    txn.execute(COUNT_KEYS, (user_id, version))
    row = txn.fetchone()
    return int(row[0]) if row else 0


class E2eRoomKeysStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def create_version(self, user_id: str, algorithm: str, auth_data: dict[str, Any]) -> int:
        def create(txn: Transaction) -> int:
            txn.execute(SELECT_MAX_VERSION, (user_id,))
            row = txn.fetchone()
            version = (int(row[0]) if row and row[0] is not None else 0) + 1
            txn.execute(INSERT_VERSION, (user_id, version, algorithm, json.dumps(auth_data)))
            return version

        return await self.db.run_interaction("create_room_key_version", create)

    async def get_version(self, user_id: str, version: int | None) -> tuple[BackupVersion, int] | None:
        """(version info, key count) for a live version, or the latest one when version is None."""

        def read(txn: Transaction) -> tuple[BackupVersion, int] | None:
            if version is None:
                txn.execute(SELECT_LATEST_VERSION, (user_id,))
            else:
                txn.execute(SELECT_VERSION, (user_id, version))
            row = txn.fetchone()
            if row is None:
                return None
            info = _version(row)
            return info, _count(txn, user_id, info.version)

        return await self.db.run_interaction("get_room_key_version", read)

    async def update_version(self, user_id: str, version: int, auth_data: dict[str, Any]) -> bool:
        def update(txn: Transaction) -> bool:
            txn.execute(UPDATE_VERSION, (json.dumps(auth_data), user_id, version))
            return txn.rowcount > 0

        return await self.db.run_interaction("update_room_key_version", update)

    async def delete_version(self, user_id: str, version: int) -> bool:
        def delete(txn: Transaction) -> bool:
            txn.execute(SELECT_VERSION, (user_id, version))
            if txn.fetchone() is None:
                return False
            txn.execute(DELETE_KEYS, (user_id, version))
            txn.execute(MARK_VERSION_DELETED, (user_id, version))
            return True

        return await self.db.run_interaction("delete_room_key_version", delete)

    async def put_keys(self, user_id: str, version: int, keys: dict[tuple[str, str], RoomKey],
                       should_replace: Callable[[RoomKey, RoomKey], bool],
                       require_latest: bool = True) -> tuple[BackupVersion, int] | str | None:
        """Merge keys into a backup version and return (version after, count).

        Returns None when the user has no backup at all, or the current version
        (a string) when ``version`` is not it; both checked in the same transaction.
        """

        def put(txn: Transaction) -> tuple[BackupVersion, int] | str | None:
            txn.execute(SELECT_LATEST_VERSION, (user_id,))
            row = txn.fetchone()
            if row is None:
                return None
            latest = _version(row)
            if require_latest and latest.version != version:
                return str(latest.version)
            changed = False
            for (room_id, session_id), key in keys.items():
                existing = _select_keys(txn, user_id, version, (room_id, session_id)).get((room_id, session_id))
                if existing is not None and not should_replace(existing, key):
                    continue
                txn.execute(UPSERT_KEY, (user_id, version, room_id, session_id, key.first_message_index,
                                         key.forwarded_count, int(key.is_verified), json.dumps(key.session_data)))
                changed = True
            if changed:
                txn.execute(BUMP_ETAG, (user_id, version))
                latest = attrs.evolve(latest, etag=latest.etag + 1)
            return latest, _count(txn, user_id, version)

        return await self.db.run_interaction("put_room_keys", put)

    async def get_keys(self, user_id: str, version: int,
                       selector: KeySelector) -> dict[tuple[str, str], RoomKey] | None:
        """Keys of a live version (None if the version does not exist)."""

        def read(txn: Transaction) -> dict[tuple[str, str], RoomKey] | None:
            txn.execute(SELECT_VERSION, (user_id, version))
            if txn.fetchone() is None:
                return None
            return _select_keys(txn, user_id, version, selector)

        return await self.db.run_interaction("get_room_keys", read)

    async def delete_keys(self, user_id: str, version: int,
                          selector: KeySelector) -> tuple[BackupVersion, int] | None:
        def delete(txn: Transaction) -> tuple[BackupVersion, int] | None:
            txn.execute(SELECT_VERSION, (user_id, version))
            row = txn.fetchone()
            if row is None:
                return None
            info = _version(row)
            where, args = _selector_clause(selector)
            txn.execute(DELETE_KEYS + where, [user_id, version, *args])
            if txn.rowcount:
                txn.execute(BUMP_ETAG, (user_id, version))
                info = attrs.evolve(info, etag=info.etag + 1)
            return info, _count(txn, user_id, version)

        return await self.db.run_interaction("delete_room_keys", delete)
