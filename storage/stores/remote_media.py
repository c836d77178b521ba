"""The ``remote_media_cache`` table: our copies of other servers' media."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from storage.engine import Transaction
from storage.host import StorageHost
from storage.stores.storable import storable

_COLUMNS = ("media_origin, media_id, file_id, media_type, media_length, upload_name, sha256, created_ts,"
            " last_access_ts, quarantined_by, authenticated")
SELECT_CACHED = f"SELECT {_COLUMNS} FROM remote_media_cache WHERE media_origin = ? AND media_id = ?"
INSERT_CACHED = (
    f"INSERT INTO remote_media_cache ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (media_origin, media_id) DO NOTHING"
)
# The same bytes quarantined anywhere here (local or another remote copy) quarantine a new copy.
SHA256_QUARANTINED = (
    "SELECT 1 FROM local_media WHERE sha256 = ? AND quarantined_by IS NOT NULL"
    " UNION ALL SELECT 1 FROM remote_media_cache WHERE sha256 = ? AND quarantined_by IS NOT NULL"
)
SET_LAST_ACCESS = "UPDATE remote_media_cache SET last_access_ts = ? WHERE media_origin = ? AND media_id = ?"
SET_QUARANTINE = "UPDATE remote_media_cache SET quarantined_by = ? WHERE media_origin = ? AND media_id = ?"
QUARANTINE_IF_CLEAR = (
    "UPDATE remote_media_cache SET quarantined_by = ?"
    " WHERE media_origin = ? AND media_id = ? AND quarantined_by IS NULL"
)
# Not used since before_ts; quarantined copies are kept, as Synapse does.
SELECT_UNUSED = (
    f"SELECT {_COLUMNS} FROM remote_media_cache WHERE quarantined_by IS NULL"
    " AND (last_access_ts < ? OR (last_access_ts IS NULL AND created_ts < ?))"
)
DELETE_CACHED = "DELETE FROM remote_media_cache WHERE media_origin = ? AND media_id = ?"


@attrs.frozen
class RemoteMedia:
    media_origin: str
    media_id: str
    file_id: str
    media_type: str
    media_length: int
    upload_name: str | None
    sha256: str | None
    created_ts: int
    last_access_ts: int | None
    quarantined_by: str | None
    authenticated: bool


def _cached(row: Sequence[Any]) -> RemoteMedia:
    return RemoteMedia(row[0], row[1], row[2], row[3], int(row[4]), row[5], row[6], int(row[7]),
                       None if row[8] is None else int(row[8]), row[9], bool(row[10]))


class RemoteMediaCacheStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def get_cached(self, origin: str, media_id: str) -> RemoteMedia | None:
        if not storable(origin, media_id):
            return None
        rows = await self.db.execute("get_remote_media", SELECT_CACHED, origin, media_id)
        return _cached(rows[0]) if rows else None

    async def add_cached(self, media: RemoteMedia) -> bool:
        """Record a fetched copy; False if another fetch recorded one first (keep that one).

        A copy whose SHA-256 matches quarantined media is recorded as quarantined by ``system``."""
        def insert(txn: Transaction) -> bool:
            quarantined_by = media.quarantined_by
            if quarantined_by is None and media.sha256 is not None:
                txn.execute(SHA256_QUARANTINED, (media.sha256, media.sha256))
                if txn.fetchone() is not None:
                    quarantined_by = "system"
            txn.execute(INSERT_CACHED, (media.media_origin, media.media_id, media.file_id, media.media_type,
                                        media.media_length, media.upload_name, media.sha256, media.created_ts,
                                        media.last_access_ts, quarantined_by,
                                        1 if media.authenticated else 0))
            return txn.rowcount == 1

        return await self.db.run_interaction("add_remote_media", insert)

    async def set_last_access(self, keys: Iterable[tuple[str, str]], now_ms: int) -> None:
        batch = [(now_ms, origin, media_id) for origin, media_id in keys]
        if not batch:
            return

        def update(txn: Transaction) -> None:
            txn.executemany(SET_LAST_ACCESS, batch)

        await self.db.run_interaction("set_remote_media_last_access", update)

    async def set_quarantined(self, origin: str, media_id: str, quarantined_by: str | None) -> bool:
        if not storable(origin, media_id):
            return False

        def update(txn: Transaction) -> bool:
            txn.execute(SET_QUARANTINE, (quarantined_by, origin, media_id))
            return txn.rowcount == 1

        return await self.db.run_interaction("set_remote_media_quarantine", update)

    async def quarantine_keys(self, keys: Iterable[tuple[str, str]], quarantined_by: str) -> int:
        batch = [(origin, media_id) for origin, media_id in keys if storable(origin, media_id)]

        def update(txn: Transaction) -> int:
            changed = 0
            for origin, media_id in batch:
                txn.execute(QUARANTINE_IF_CLEAR, (quarantined_by, origin, media_id))
                changed += txn.rowcount
            return changed

        return await self.db.run_interaction("quarantine_remote_media", update)

    async def unused_since(self, before_ms: int) -> list[RemoteMedia]:
        rows = await self.db.execute("remote_media_unused_since", SELECT_UNUSED, before_ms, before_ms)
        return [_cached(row) for row in rows]

    async def delete_cached(self, origin: str, media_id: str) -> None:
        await self.db.execute("delete_remote_media", DELETE_CACHED, origin, media_id)
