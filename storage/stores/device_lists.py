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
INSERT_DEVICE_CHANGE = (
    "INSERT INTO device_lists_stream (stream_id, user_id, device_id) VALUES (?, ?, ?)"
    " ON CONFLICT (stream_id, user_id) DO NOTHING"
)
SELECT_CHANGES = (
    "SELECT stream_id, user_id, device_id FROM device_lists_stream WHERE stream_id > ? AND stream_id <= ?"
    " ORDER BY stream_id"
)
SELECT_PREVIOUS = "SELECT MAX(stream_id) FROM device_lists_stream WHERE user_id = ? AND stream_id < ?"
SELECT_LATEST = "SELECT MAX(stream_id) FROM device_lists_stream WHERE user_id = ?"
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

    async def add_device_changes(self, user_id: str, changes: list[tuple[int, str | None]]) -> None:
        """One row per (stream id, device) changed; a None device means the cross-signing keys."""

        def store(txn: Transaction) -> None:
            txn.executemany(INSERT_DEVICE_CHANGE, [(sid, user_id, device) for sid, device in changes])

        await self.db.run_interaction("add_device_changes", store)

    async def get_changes(self, after: int, upto: int) -> list[tuple[int, str, str | None]]:
        """(stream id, user, device or None) at stream ids in (after, upto], in stream order."""
        if upto <= after:
            return []
        rows = await self.db.execute("get_device_list_change_rows", SELECT_CHANGES, after, upto)
        return [(row[0], row[1], row[2]) for row in rows]

    async def previous_stream_id(self, user_id: str, stream_id: int) -> int | None:
        """The user's change before ``stream_id`` (an update's ``prev_id``)."""
        rows = await self.db.execute("previous_device_list_change", SELECT_PREVIOUS, user_id, stream_id)
        return rows[0][0] if rows and rows[0][0] is not None else None

    async def latest_stream_id(self, user_id: str) -> int:
        rows = await self.db.execute("latest_device_list_change", SELECT_LATEST, user_id)
        return rows[0][0] if rows and rows[0][0] is not None else 0

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

    async def remove_devices_e2e_state(self, user_id: str, device_ids: list[str], stream_ids: list[int]) -> None:
        """Forget everything end-to-end about these devices and record the change (a stream id
        per device, for the federation sender's per-device updates), atomically."""

        def remove(txn: Transaction) -> None:
            E2eDeviceKeysStore.delete_device_keys_txn(txn, user_id, device_ids)
            E2eOneTimeKeysStore.delete_device_keys_txn(txn, user_id, device_ids)
            E2eFallbackKeysStore.delete_device_keys_txn(txn, user_id, device_ids)
            E2eCrossSigningStore.delete_device_signatures_txn(txn, user_id, device_ids)
            DeviceInboxStore.delete_device_inbox_txn(txn, user_id, device_ids)
            txn.executemany(INSERT_DEVICE_CHANGE, [(sid, user_id, device_id)
                                                   for sid, device_id in zip(stream_ids, device_ids, strict=True)])

        try:
            await self.db.run_interaction("remove_devices_e2e_state", remove)
        finally:
            self.fallback_keys.forget(user_id, device_ids)
