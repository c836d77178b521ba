"""The ``devices`` table: each login of a user is a device with an id and a display name."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from storage.engine import Transaction
from storage.host import StorageHost
from storage.stores.storable import storable

INSERT_DEVICE = (
    "INSERT INTO devices (user_id, device_id, display_name, created_ms)"
    " VALUES (?, ?, ?, ?) ON CONFLICT (user_id, device_id) DO NOTHING"
)
SELECT_DEVICE = (
    "SELECT user_id, device_id, display_name, last_seen_ms, last_seen_ip"
    " FROM devices WHERE user_id = ? AND device_id = ?"
)
SELECT_USER_DEVICES = (
    "SELECT user_id, device_id, display_name, last_seen_ms, last_seen_ip"
    " FROM devices WHERE user_id = ? ORDER BY device_id"
)
UPDATE_DISPLAY_NAME = "UPDATE devices SET display_name = ? WHERE user_id = ? AND device_id = ?"
UPDATE_LAST_SEEN = "UPDATE devices SET last_seen_ms = ?, last_seen_ip = ? WHERE user_id = ? AND device_id = ?"
DELETE_DEVICE = "DELETE FROM devices WHERE user_id = ? AND device_id = ?"


@attrs.frozen
class DeviceRecord:
    user_id: str
    device_id: str
    display_name: str | None
    last_seen_ms: int | None
    last_seen_ip: str | None

    def to_json(self) -> dict[str, Any]:
        """The client-server API's Device object."""
        body: dict[str, Any] = {"device_id": self.device_id}
        if self.display_name is not None:  # a string or absent (spec), never null
            body["display_name"] = self.display_name
        if self.last_seen_ms is not None:
            body["last_seen_ts"] = self.last_seen_ms
        if self.last_seen_ip is not None:
            body["last_seen_ip"] = self.last_seen_ip
        return body


def _record(row: tuple[Any, ...]) -> DeviceRecord:
    return DeviceRecord(row[0], row[1], row[2], None if row[3] is None else int(row[3]), row[4])


class DeviceStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def store_device(self, user_id: str, device_id: str, display_name: str | None,
                           created_ms: int) -> bool:
        """Create the device unless it exists (a re-login with the same id keeps it); True if new."""

        def insert(txn: Transaction) -> bool:
            txn.execute(INSERT_DEVICE, (user_id, device_id, display_name, created_ms))
            return txn.rowcount == 1

        return await self.db.run_interaction("store_device", insert)

    async def get_device(self, user_id: str, device_id: str) -> DeviceRecord | None:
        if not storable(user_id, device_id):
            return None
        rows = await self.db.execute("get_device", SELECT_DEVICE, user_id, device_id)
        return _record(rows[0]) if rows else None

    async def get_devices_by_user(self, user_id: str) -> list[DeviceRecord]:
        rows = await self.db.execute("get_devices_by_user", SELECT_USER_DEVICES, user_id)
        return [_record(row) for row in rows]

    async def set_display_name(self, user_id: str, device_id: str, display_name: str | None) -> bool:
        if not storable(user_id, device_id):
            return False

        def update(txn: Transaction) -> bool:
            txn.execute(UPDATE_DISPLAY_NAME, (display_name, user_id, device_id))
            return txn.rowcount > 0

        return await self.db.run_interaction("set_device_display_name", update)

    async def record_last_seen(self, user_id: str, device_id: str, seen_ms: int, ip: str | None) -> None:
        await self.db.execute("record_device_last_seen", UPDATE_LAST_SEEN, seen_ms, ip, user_id, device_id)

    async def delete_devices(self, user_id: str, device_ids: Iterable[str]) -> None:
        ids = [device_id for device_id in device_ids if storable(device_id)]

        def delete(txn: Transaction) -> None:
            txn.executemany(DELETE_DEVICE, [(user_id, device_id) for device_id in ids])

        await self.db.run_interaction("delete_devices", delete)
