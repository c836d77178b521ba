"""``remote_device_lists`` and ``remote_device_keys``: our cache of other servers' users' devices.

One row per cached user holds the position of their server's device-list stream the cache
reflects and whether a resync is owed; one row per device holds its signed keys. Every
write that changes what a client would see also records a ``device_lists_stream`` row for
the user in the same transaction, so sync's ``device_lists.changed`` can never miss it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import attrs

from storage.engine import Transaction
from storage.host import StorageHost

SELECT_USER = (
    "SELECT stream_id, stale, master_key, self_signing_key FROM remote_device_lists WHERE user_id = ?"
)
SELECT_DEVICES = "SELECT device_id, key_json, display_name FROM remote_device_keys WHERE user_id = ?"
UPSERT_USER = (
    "INSERT INTO remote_device_lists (user_id, stream_id, stale, master_key, self_signing_key, updated_ms)"
    " VALUES (?, ?, 0, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET stream_id = excluded.stream_id,"
    " stale = 0, master_key = excluded.master_key, self_signing_key = excluded.self_signing_key,"
    " updated_ms = excluded.updated_ms"
)
UPDATE_STREAM = "UPDATE remote_device_lists SET stream_id = ?, updated_ms = ? WHERE user_id = ?"
UPDATE_SIGNING = (
    "UPDATE remote_device_lists SET master_key = ?, self_signing_key = ?, updated_ms = ? WHERE user_id = ?"
)
MARK_STALE = "UPDATE remote_device_lists SET stale = 1 WHERE user_id = ?"
SELECT_STALE = "SELECT user_id FROM remote_device_lists WHERE stale = 1"
DELETE_USER = "DELETE FROM remote_device_lists WHERE user_id = ?"
DELETE_USER_DEVICES = "DELETE FROM remote_device_keys WHERE user_id = ?"
DELETE_DEVICE = "DELETE FROM remote_device_keys WHERE user_id = ? AND device_id = ?"
UPSERT_DEVICE = (
    "INSERT INTO remote_device_keys (user_id, device_id, key_json, display_name) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (user_id, device_id) DO UPDATE SET key_json = excluded.key_json,"
    " display_name = excluded.display_name"
)
INSERT_CHANGE = (
    "INSERT INTO device_lists_stream (stream_id, user_id) VALUES (?, ?)"
    " ON CONFLICT (stream_id, user_id) DO NOTHING"
)


@attrs.frozen
class RemoteDevice:
    device_id: str
    keys: dict[str, Any] | None
    display_name: str | None


@attrs.frozen
class CachedDeviceList:
    user_id: str
    stream_id: int | None
    stale: bool
    master_key: dict[str, Any] | None
    self_signing_key: dict[str, Any] | None
    devices: tuple[RemoteDevice, ...]


def _dump(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value)


def _load(value: str | None) -> dict[str, Any] | None:
    return None if value is None else json.loads(value)


class RemoteDeviceListsStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def get(self, user_ids: Iterable[str]) -> dict[str, CachedDeviceList]:
        wanted = list(dict.fromkeys(user_ids))

        def read(txn: Transaction) -> dict[str, CachedDeviceList]:
            found: dict[str, CachedDeviceList] = {}
            for user_id in wanted:
                txn.execute(SELECT_USER, (user_id,))
                row = txn.fetchone()
                if row is None:
                    continue
                txn.execute(SELECT_DEVICES, (user_id,))
                devices = tuple(RemoteDevice(d, _load(k), n) for d, k, n in txn.fetchall())
                found[user_id] = CachedDeviceList(user_id, row[0], bool(row[1]), _load(row[2]), _load(row[3]),
                                                  devices)
            return found

        return await self.db.run_interaction("get_remote_device_lists", read)

    async def replace(self, user_id: str, stream_id: int | None, devices: list[RemoteDevice],
                      master_key: dict[str, Any] | None, self_signing_key: dict[str, Any] | None,
                      now_ms: int, change_id: int | None) -> None:
        """The whole list as the user's server gave it; records a change at ``change_id`` if given."""

        def store(txn: Transaction) -> None:
            txn.execute(UPSERT_USER, (user_id, stream_id, _dump(master_key), _dump(self_signing_key), now_ms))
            txn.execute(DELETE_USER_DEVICES, (user_id,))
            txn.executemany(UPSERT_DEVICE, [(user_id, d.device_id, _dump(d.keys), d.display_name)
                                            for d in devices])
            if change_id is not None:
                txn.execute(INSERT_CHANGE, (change_id, user_id))

        await self.db.run_interaction("replace_remote_device_list", store)

    async def apply_update(self, user_id: str, stream_id: int, device: RemoteDevice, deleted: bool,
                           now_ms: int, change_id: int) -> None:
        """One device's update from an ``m.device_list_update`` that follows on from what we hold."""

        def store(txn: Transaction) -> None:
            if deleted:
                txn.execute(DELETE_DEVICE, (user_id, device.device_id))
            else:
                txn.execute(UPSERT_DEVICE, (user_id, device.device_id, _dump(device.keys), device.display_name))
            txn.execute(UPDATE_STREAM, (stream_id, now_ms, user_id))
            txn.execute(INSERT_CHANGE, (change_id, user_id))

        await self.db.run_interaction("apply_remote_device_update", store)

    async def set_signing_keys(self, user_id: str, master_key: dict[str, Any] | None,
                               self_signing_key: dict[str, Any] | None, now_ms: int, change_id: int) -> None:
        def store(txn: Transaction) -> None:
            txn.execute(UPDATE_SIGNING, (_dump(master_key), _dump(self_signing_key), now_ms, user_id))
            txn.execute(INSERT_CHANGE, (change_id, user_id))

        await self.db.run_interaction("set_remote_signing_keys", store)

    async def mark_stale(self, user_id: str) -> None:
        await self.db.execute("mark_remote_device_list_stale", MARK_STALE, user_id)

    async def get_stale_users(self) -> list[str]:
        return [row[0] for row in await self.db.execute("get_stale_remote_device_lists", SELECT_STALE)]

    async def forget(self, user_id: str) -> None:
        """Stop caching the user (we share no room with them any more)."""

        def remove(txn: Transaction) -> None:
            txn.execute(DELETE_USER_DEVICES, (user_id,))
            txn.execute(DELETE_USER, (user_id,))

        await self.db.run_interaction("forget_remote_device_list", remove)
