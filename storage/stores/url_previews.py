"""The ``url_preview_cache`` table: each URL's last preview, until it expires."""

from __future__ import annotations

import json
from typing import Any

from storage.engine import Transaction
from storage.host import StorageHost
from storage.stores.storable import storable

SELECT_FRESH = "SELECT og FROM url_preview_cache WHERE url = ? AND expires_ts > ?"
UPSERT = (
    "INSERT INTO url_preview_cache (url, fetched_ts, expires_ts, og) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (url) DO UPDATE SET fetched_ts = excluded.fetched_ts, expires_ts = excluded.expires_ts,"
    " og = excluded.og"
)
DELETE_EXPIRED = "DELETE FROM url_preview_cache WHERE expires_ts <= ?"


class UrlPreviewStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def get_fresh(self, url: str, now_ms: int) -> dict[str, Any] | None:
        """The cached preview of ``url`` if it has not expired."""
        if not storable(url):
            return None
        rows = await self.db.execute("get_url_preview", SELECT_FRESH, url, now_ms)
        if not rows:
            return None
        og = json.loads(rows[0][0])
        return og if isinstance(og, dict) else None

    async def put(self, url: str, now_ms: int, expires_ms: int, og: dict[str, Any]) -> None:
        if not storable(url):
            return
        encoded = json.dumps(og, ensure_ascii=False, separators=(",", ":"))

        def upsert(txn: Transaction) -> None:
            txn.execute(UPSERT, (url, now_ms, expires_ms, encoded))

        await self.db.run_interaction("put_url_preview", upsert)

    async def delete_expired(self, now_ms: int) -> None:
        await self.db.execute("delete_expired_url_previews", DELETE_EXPIRED, now_ms)
