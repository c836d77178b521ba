"""Other servers' signing keys (``server_signing_keys``): the key ring's persistent cache."""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from storage.engine import Transaction
from storage.host import StorageHost

COLUMNS = "server_name, key_id, verify_key, valid_until_ts, expired_ts, fetched_ts, from_server, key_json"
SELECT_FOR_SERVERS = f"SELECT {COLUMNS} FROM server_signing_keys WHERE server_name IN ({{placeholders}})"
UPSERT_KEY = (
    f"INSERT INTO server_signing_keys ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (server_name, key_id) DO UPDATE SET verify_key = excluded.verify_key,"
    " valid_until_ts = excluded.valid_until_ts, expired_ts = excluded.expired_ts,"
    " fetched_ts = excluded.fetched_ts, from_server = excluded.from_server, key_json = excluded.key_json"
)
BATCH = 200


@attrs.frozen
class StoredServerKey:
    server_name: str
    key_id: str
    verify_key: str  # unpadded base64
    valid_until_ts: int
    expired_ts: int | None
    fetched_ts: int
    from_server: str
    key_json: str


class ServerKeyStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def get_keys_for_servers(self, server_names: Iterable[str]) -> dict[str, list[StoredServerKey]]:
        names = sorted(set(server_names))

        def read(txn: Transaction) -> dict[str, list[StoredServerKey]]:
            found: dict[str, list[StoredServerKey]] = {name: [] for name in names}
            for start in range(0, len(names), BATCH):
                batch = names[start:start + BATCH]
                txn.execute(SELECT_FOR_SERVERS.format(placeholders=", ".join("?" * len(batch))), batch)
                for row in txn.fetchall():
                    found[row[0]].append(StoredServerKey(*row))
            return found

        if not names:
            return {}
        return await self.db.run_interaction("get_server_keys", read)

    async def store_keys(self, keys: Iterable[StoredServerKey]) -> None:
        rows = [attrs.astuple(key) for key in keys]
        if not rows:
            return

        def write(txn: Transaction) -> None:
            txn.executemany(UPSERT_KEY, rows)

        await self.db.run_interaction("store_server_keys", write)
