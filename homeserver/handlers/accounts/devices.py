"""Devices: listing, renaming, and the one place where devices are deleted.

Other areas react to device changes by appending to the hook lists, e.g. the
E2EE area removes a deleted device's keys:
``hs.get(DeviceHandler).on_devices_deleted.append(async_fn)`` where
``async_fn(user_id, device_ids)`` runs after the devices and their tokens are gone.
Register hooks at start-up (e.g. in your API module's ``register_routes``), not in a
lazily built handler: after a restart, a device may be deleted before that handler
is first built, and the hook would miss it.
"""

from __future__ import annotations

import logging
import secrets
import string
from collections.abc import Awaitable, Callable, Iterable

from homeserver.errors import not_found
from homeserver.handlers.accounts.auth import now_ms
from homeserver.handlers.validation import check_storable_text
from homeserver.server import Server
from storage.stores.access_tokens import AccessTokenStore
from storage.stores.devices import DeviceRecord, DeviceStore

logger = logging.getLogger(__name__)

DeviceHook = Callable[[str, list[str]], Awaitable[None]]
MAX_DEVICE_ID_LENGTH = 255
MAX_DISPLAY_NAME_LENGTH = 255


def generate_device_id() -> str:
    return "".join(secrets.choice(string.ascii_uppercase) for _ in range(10))


class DeviceHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.store = hs.get(DeviceStore)
        self.tokens = hs.get(AccessTokenStore)
        # Called with (user_id, [device_id]) after new devices are stored.
        self.on_devices_added: list[DeviceHook] = []
        # Called with (user_id, [device_id]) after devices and their tokens are deleted.
        self.on_devices_deleted: list[DeviceHook] = []
        # Called with (user_id, [device_id]) after a device's display name changed.
        self.on_devices_renamed: list[DeviceHook] = []

    async def ensure_device(self, user_id: str, device_id: str, display_name: str | None) -> bool:
        """Create the device if new (True), else keep it; runs the added-hooks for new ones."""
        created = await self.store.store_device(user_id, device_id, display_name, now_ms(self.hs))
        if created:
            await self._run_hooks(self.on_devices_added, user_id, [device_id])
        return created

    async def get_devices(self, user_id: str) -> list[DeviceRecord]:
        return await self.store.get_devices_by_user(user_id)

    async def get_device(self, user_id: str, device_id: str) -> DeviceRecord:
        device = await self.store.get_device(user_id, device_id)
        if device is None:
            raise not_found("No such device")
        return device

    async def set_display_name(self, user_id: str, device_id: str, display_name: str | None) -> None:
        check_storable_text("display_name", display_name)
        if not await self.store.set_display_name(user_id, device_id, display_name):
            raise not_found("No such device")
        await self._run_hooks(self.on_devices_renamed, user_id, [device_id])

    async def delete_devices(self, user_id: str, device_ids: Iterable[str]) -> None:
        """Delete devices: tokens first (so none outlives its device), then the rows, then hooks."""
        ids = sorted(set(device_ids))
        if not ids:
            return
        await self.tokens.delete_device_tokens(user_id, ids)
        await self.store.delete_devices(user_id, ids)
        await self._run_hooks(self.on_devices_deleted, user_id, ids)

    async def delete_all_devices(self, user_id: str, except_device_id: str | None = None) -> None:
        devices = await self.store.get_devices_by_user(user_id)
        await self.delete_devices(user_id, [d.device_id for d in devices if d.device_id != except_device_id])

    async def _run_hooks(self, hooks: list[DeviceHook], user_id: str, device_ids: list[str]) -> None:
        for hook in list(hooks):
            try:
                await hook(user_id, device_ids)
            except Exception:
                # The deletion itself is done; a failing listener must not undo or hide it.
                logger.exception("device hook %r failed for %s %s", hook, user_id, device_ids)
