"""The ``device_lists_stream`` table: which users' device lists changed, in stream order.

It also owns the one transaction that forgets a device's end-to-end state
(keys, one-time and fallback keys, signatures, inbox) and records the change.
"""

from __future__ import annotations

from collections.abc import Iterable

from storage.engine import Transaction
from storage.host import StorageHost
from storage.stores.device_inbox import DeviceInboxStore
from storage.stores.e2e_cross_signing import E2eCrossSigningStore
from storage.stores.e2e_device_keys import E2eDeviceKeysStore
from storage.stores.e2e_fallback_keys import E2eFallbackKeysStore
from storage.stores.e2e_one_time_keys import E2eOneTimeKeysStore
from storage.streams import Streams, StreamWriter

INSERT_CHANGE = (
    "INSERT INTO device_lists_stream (stream_id, user_id) VALUES (?, ?)"
    " ON CONFLICT (stream_id, user_id) DO NOTHING"
)
SELECT_CHANGED_USERS = (
    "SELECT DISTINCT user_id FROM device_lists_stream WHERE stream_id > ? AND stream_id <= ?"
)

# Reads the rooms area's membership history (owner: rooms). Kept to this one
# query so it can move to RoomMemberStore as "membership changes in a range".
SELECT_MEMBERSHIP_MOVERS = (
    "SELECT DISTINCT room_id, user_id FROM room_membership_changes"
    " WHERE stream_ordering > ? AND stream_ordering <= ?"
)


class DeviceListsStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db
        self.streams: Streams = hs.get(Streams)
        self.fallback_keys: E2eFallbackKeysStore = hs.get(E2eFallbackKeysStore)

    async def stream_writer(self) -> StreamWriter:
        """The device_lists stream's writer (ids are device_lists_stream.stream_id)."""
        return await self.streams.writer("device_lists", "device_lists_stream", "stream_id")

    async def add_change(self, stream_id: int, user_ids: Iterable[str]) -> None:
        users = list(dict.fromkeys(user_ids))

        def store(txn: Transaction) -> None:
            txn.executemany(INSERT_CHANGE, [(stream_id, user_id) for user_id in users])

        await self.db.run_interaction("add_device_list_change", store)

    async def get_changed_users(self, after: int, upto: int) -> set[str]:
        """Users whose device lists changed at stream ids in (after, upto]."""
        if upto <= after:
            return set()
        rows = await self.db.execute("get_device_list_changes", SELECT_CHANGED_USERS, after, upto)
        return {row[0] for row in rows}

    async def get_membership_movers(self, after: int, upto: int) -> set[tuple[str, str]]:
        """(room_id, user_id) for every membership change at event positions in (after, upto]."""
        rows = await self.db.execute("get_membership_movers", SELECT_MEMBERSHIP_MOVERS, after, upto)
        return {(row[0], row[1]) for row in rows}

    async def remove_devices_e2e_state(self, user_id: str, device_ids: list[str], stream_id: int) -> None:
        """Forget everything end-to-end about these devices and record the change, atomically."""

        def remove(txn: Transaction) -> None:
            E2eDeviceKeysStore.delete_device_keys_txn(txn, user_id, device_ids)
            E2eOneTimeKeysStore.delete_device_keys_txn(txn, user_id, device_ids)
            E2eFallbackKeysStore.delete_device_keys_txn(txn, user_id, device_ids)
            E2eCrossSigningStore.delete_device_signatures_txn(txn, user_id, device_ids)
            DeviceInboxStore.delete_device_inbox_txn(txn, user_id, device_ids)
            txn.execute(INSERT_CHANGE, (stream_id, user_id))

        try:
            await self.db.run_interaction("remove_devices_e2e_state", remove)
        finally:
            self.fallback_keys.forget(user_id, device_ids)
