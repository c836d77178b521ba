"""Answering ``/_matrix/key/v2/query`` for other servers (acting as a notary).

For each server asked about we return the key documents we hold, each as its
owner signed it plus our own signature.  We fetch from the server itself first
when we hold nothing, when a requested key is unknown or not valid until the
asked-for time, or when half of the cached answer's lifetime has passed (the
spec's advice to notaries).  If that fetch fails we still return what we hold:
old signatures must stay checkable after a server disappears.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from twisted.internet import defer

from federation.keys.keyring import KeyRing
from federation.keys.local import LocalServerKeys
from homeserver.config.names import split_server_name
from homeserver.errors import invalid_param
from homeserver.server import Server
from storage.stores.server_keys import ServerKeyStore, StoredServerKey

MAX_SERVERS_PER_QUERY = 100


def check_server_name(server_name: str) -> None:
    try:
        split_server_name(server_name)
    except ValueError:
        raise invalid_param(f"{server_name!r} is not a server name") from None


def _needs_refresh(rows: list[StoredServerKey], key_ids: Mapping[str, int], minimum: int, now: int) -> bool:
    if not rows:
        return True
    held = {row.key_id: row for row in rows}
    for key_id, minimum in key_ids.items():
        row = held.get(key_id)
        if row is None or row.valid_until_ts < minimum:
            return True
    if not key_ids:
        newest = max(rows, key=lambda row: row.fetched_ts)
        current = [row for row in rows if row.expired_ts is None]
        if not current or max(row.valid_until_ts for row in current) < minimum:
            return True
        return now >= newest.fetched_ts + (newest.valid_until_ts - newest.fetched_ts) // 2
    return any(now >= row.fetched_ts + (row.valid_until_ts - row.fetched_ts) // 2
               for row in rows if row.key_id in key_ids and row.expired_ts is None)


class NotaryHandler:
    def __init__(self, hs: Server) -> None:
        self.server_name: str = hs.server_name
        self.local = hs.get(LocalServerKeys)
        self.keyring = hs.get(KeyRing)
        self.store = hs.get(ServerKeyStore)

    async def query(self, criteria: Mapping[str, Mapping[str, int | None]],
                    minimum_valid_until_ts: int | None = None) -> dict[str, Any]:
        """``criteria``: server -> key ID -> minimum_valid_until_ts (None: now). An empty key map asks
        for all keys, valid until ``minimum_valid_until_ts`` (None: now)."""
        if len(criteria) > MAX_SERVERS_PER_QUERY:
            raise invalid_param(f"at most {MAX_SERVERS_PER_QUERY} servers per query")
        for server_name in criteria:
            check_server_name(server_name)
        now = int(time.time() * 1000)
        results = await defer.gatherResults([
            defer.Deferred.fromCoroutine(self._documents_for(server, {
                key_id: now if minimum is None else minimum for key_id, minimum in key_ids.items()
            }, now if minimum_valid_until_ts is None else minimum_valid_until_ts, now))
            for server, key_ids in criteria.items()
        ])
        return {"server_keys": [document for documents in results for document in documents]}

    async def _documents_for(self, server_name: str, key_ids: Mapping[str, int], minimum: int,
                             now: int) -> list[dict[str, Any]]:
        if server_name == self.server_name:
            return [self.local.key_document(now)]
        rows = (await self.store.get_keys_for_servers([server_name])).get(server_name, [])
        if _needs_refresh(rows, key_ids, minimum, now):
            if await self.keyring.fetch_direct(server_name) is not None:
                rows = (await self.store.get_keys_for_servers([server_name])).get(server_name, [])
        documents = {row.key_json for row in rows}
        return [self.local.sign(json.loads(text)) for text in sorted(documents)]
