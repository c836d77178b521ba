"""The ``local_media`` table: media uploaded to this server, and IDs waiting for an upload."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from storage.engine import Transaction
from storage.host import StorageHost
from storage.stores.storable import storable

_COLUMNS = ("media_id, user_id, created_ts, media_type, media_length, upload_name, sha256,"
            " last_access_ts, quarantined_by, authenticated")
SELECT_MEDIA = f"SELECT {_COLUMNS} FROM local_media WHERE media_id = ?"
INSERT_PENDING = "INSERT INTO local_media (media_id, user_id, created_ts, authenticated) VALUES (?, ?, ?, ?)"
INSERT_UPLOADED = (
    "INSERT INTO local_media (media_id, user_id, created_ts, media_type, media_length, upload_name, sha256,"
    " quarantined_by, authenticated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Fill in a pending ID; only once, and only for its creator.
COMPLETE_PENDING = (
    "UPDATE local_media SET media_type = ?, media_length = ?, upload_name = ?, sha256 = ?, quarantined_by = ?"
    " WHERE media_id = ? AND user_id = ? AND media_length IS NULL"
)
COUNT_PENDING = (
    "SELECT COUNT(*), MIN(created_ts) FROM local_media"
    " WHERE user_id = ? AND media_length IS NULL AND created_ts > ?"
)
SELECT_EXPIRED_PENDING = "SELECT media_id FROM local_media WHERE media_length IS NULL AND created_ts <= ?"
DELETE_EXPIRED_PENDING = "DELETE FROM local_media WHERE media_length IS NULL AND created_ts <= ?"
UPLOADED_SINCE = (
    "SELECT COALESCE(SUM(media_length), 0) FROM local_media WHERE user_id = ? AND created_ts > ?"
    " AND media_length IS NOT NULL"
)
SHA256_QUARANTINED = (
    "SELECT 1 FROM local_media WHERE sha256 = ? AND quarantined_by IS NOT NULL"
    " UNION ALL SELECT 1 FROM remote_media_cache WHERE sha256 = ? AND quarantined_by IS NOT NULL"
)
SET_LAST_ACCESS = "UPDATE local_media SET last_access_ts = ? WHERE media_id = ?"
SET_QUARANTINE = "UPDATE local_media SET quarantined_by = ? WHERE media_id = ?"
QUARANTINE_BY_USER = (
    "UPDATE local_media SET quarantined_by = ? WHERE user_id = ? AND quarantined_by IS NULL"
    " AND media_length IS NOT NULL"
)
QUARANTINE_IF_CLEAR = "UPDATE local_media SET quarantined_by = ? WHERE media_id = ? AND quarantined_by IS NULL"
DELETE_MEDIA = "DELETE FROM local_media WHERE media_id = ?"
SELECT_BY_USER = (
    f"SELECT {_COLUMNS} FROM local_media WHERE user_id = ? AND media_length IS NOT NULL"
    " ORDER BY created_ts DESC, media_id LIMIT ? OFFSET ?"
)
COUNT_BY_USER = "SELECT COUNT(*) FROM local_media WHERE user_id = ? AND media_length IS NOT NULL"
# Not used since before_ts (or never used, and created before it); quarantined media is kept
# as evidence, as Synapse does.
SELECT_UNUSED = (
    "SELECT media_id FROM local_media WHERE media_length IS NOT NULL AND media_length > ?"
    " AND quarantined_by IS NULL"
    " AND (last_access_ts < ? OR (last_access_ts IS NULL AND created_ts < ?))"
    " ORDER BY created_ts"
)


@attrs.frozen
class LocalMedia:
    media_id: str
    user_id: str
    created_ts: int
    media_type: str | None
    media_length: int | None  # None while a created ID waits for its upload
    upload_name: str | None
    sha256: str | None
    last_access_ts: int | None
    quarantined_by: str | None
    authenticated: bool

    @property
    def uploaded(self) -> bool:
        return self.media_length is not None


@attrs.frozen
class NewUpload:
    """The metadata of a complete upload, ready to record."""

    media_type: str
    media_length: int
    upload_name: str | None
    sha256: str


def _media(row: Sequence[Any]) -> LocalMedia:
    return LocalMedia(row[0], row[1], int(row[2]), row[3], None if row[4] is None else int(row[4]), row[5],
                      row[6], None if row[7] is None else int(row[7]), row[8], bool(row[9]))


def _quarantined_hash_txn(txn: Transaction, sha256: str) -> bool:
    txn.execute(SHA256_QUARANTINED, (sha256, sha256))
    return txn.fetchone() is not None


class LocalMediaStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def get_media(self, media_id: str) -> LocalMedia | None:
        if not storable(media_id):
            return None
        rows = await self.db.execute("get_local_media", SELECT_MEDIA, media_id)
        return _media(rows[0]) if rows else None

    async def create_pending(self, media_id: str, user_id: str, now_ms: int, authenticated: bool) -> None:
        await self.db.execute("create_pending_media", INSERT_PENDING, media_id, user_id, now_ms,
                              1 if authenticated else 0)

    async def count_pending(self, user_id: str, created_after_ms: int) -> tuple[int, int | None]:
        """(how many unexpired IDs wait for an upload, when the oldest of them was created)."""
        rows = await self.db.execute("count_pending_media", COUNT_PENDING, user_id, created_after_ms)
        count, oldest = rows[0]
        return int(count), None if oldest is None else int(oldest)

    async def record_upload(self, media_id: str, user_id: str, now_ms: int, upload: NewUpload,
                            authenticated: bool) -> bool:
        """Record a new upload; True if it matched quarantined media and was quarantined too."""
        def insert(txn: Transaction) -> bool:
            quarantined = _quarantined_hash_txn(txn, upload.sha256)
            txn.execute(INSERT_UPLOADED, (media_id, user_id, now_ms, upload.media_type, upload.media_length,
                                          upload.upload_name, upload.sha256, "system" if quarantined else None,
                                          1 if authenticated else 0))
            return quarantined

        return await self.db.run_interaction("record_local_upload", insert)

    async def complete_pending(self, media_id: str, user_id: str, upload: NewUpload) -> bool:
        """Fill in a created ID; False if it is not pending for this user any more."""
        def update(txn: Transaction) -> bool:
            quarantined = _quarantined_hash_txn(txn, upload.sha256)
            txn.execute(COMPLETE_PENDING, (upload.media_type, upload.media_length, upload.upload_name,
                                           upload.sha256, "system" if quarantined else None, media_id, user_id))
            return txn.rowcount == 1

        return await self.db.run_interaction("complete_pending_media", update)

    async def delete_expired_pending(self, created_before_ms: int) -> list[str]:
        def delete(txn: Transaction) -> list[str]:
            txn.execute(SELECT_EXPIRED_PENDING, (created_before_ms,))
            expired = [row[0] for row in txn.fetchall()]
            txn.execute(DELETE_EXPIRED_PENDING, (created_before_ms,))
            return expired

        return await self.db.run_interaction("delete_expired_pending_media", delete)

    async def uploaded_bytes_since(self, user_id: str, since_ms: int) -> int:
        rows = await self.db.execute("local_media_uploaded_since", UPLOADED_SINCE, user_id, since_ms)
        return int(rows[0][0])

    async def set_last_access(self, media_ids: Iterable[str], now_ms: int) -> None:
        batch = [(now_ms, media_id) for media_id in media_ids]
        if not batch:
            return

        def update(txn: Transaction) -> None:
            txn.executemany(SET_LAST_ACCESS, batch)

        await self.db.run_interaction("set_local_media_last_access", update)

    async def set_quarantined(self, media_id: str, quarantined_by: str | None) -> bool:
        """Quarantine (or, with None, release) one file; False if there is no such media."""
        if not storable(media_id):
            return False

        def update(txn: Transaction) -> bool:
            txn.execute(SET_QUARANTINE, (quarantined_by, media_id))
            return txn.rowcount == 1

        return await self.db.run_interaction("set_local_media_quarantine", update)

    async def quarantine_by_user(self, user_id: str, quarantined_by: str) -> int:
        def update(txn: Transaction) -> int:
            txn.execute(QUARANTINE_BY_USER, (quarantined_by, user_id))
            return txn.rowcount

        return await self.db.run_interaction("quarantine_local_media_by_user", update)

    async def quarantine_ids(self, media_ids: Iterable[str], quarantined_by: str) -> int:
        """Quarantine those of ``media_ids`` not already quarantined; how many that was."""
        ids = [media_id for media_id in media_ids if storable(media_id)]

        def update(txn: Transaction) -> int:
            changed = 0
            for media_id in ids:
                txn.execute(QUARANTINE_IF_CLEAR, (quarantined_by, media_id))
                changed += txn.rowcount
            return changed

        return await self.db.run_interaction("quarantine_local_media_ids", update)

    async def delete_media(self, media_id: str) -> None:
        await self.db.execute("delete_local_media", DELETE_MEDIA, media_id)

    async def list_by_user(self, user_id: str, offset: int, limit: int) -> tuple[list[LocalMedia], int]:
        """One page of a user's uploads, newest first, and how many they have in all."""
        def read(txn: Transaction) -> tuple[list[LocalMedia], int]:
            txn.execute(SELECT_BY_USER, (user_id, limit, offset))
            page = [_media(row) for row in txn.fetchall()]
            txn.execute(COUNT_BY_USER, (user_id,))
            row = txn.fetchone()
            return page, int(row[0]) if row else 0

        return await self.db.run_interaction("list_local_media_by_user", read)

    async def unused_since(self, before_ms: int, size_gt: int) -> list[str]:
        rows = await self.db.execute("local_media_unused_since", SELECT_UNUSED, size_gt, before_ms, before_ms)
        return [row[0] for row in rows]
