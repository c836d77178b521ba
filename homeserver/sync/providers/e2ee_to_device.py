"""to_device, device_one_time_keys_count and device_unused_fallback_key_types (stream "to_device").

Delivering to-device messages also acknowledges the earlier ones: the sync's
``since`` token proves the device received everything up to it, so those are
deleted then and not before. The key counts are per device too, and tell the
client when to upload more one-time keys or a new fallback key.
"""

from __future__ import annotations

from typing import Any

from homeserver.handlers.e2ee.e2e_keys import E2eKeysHandler
from homeserver.handlers.e2ee.to_device import TO_DEVICE_STREAM, ToDeviceHandler
from homeserver.server import Server
from homeserver.sync.provider import SyncRequest
from storage.stores.e2e_fallback_keys import E2eFallbackKeysStore


class E2eeToDeviceProvider:
    stream = TO_DEVICE_STREAM

    def __init__(self, hs: Server) -> None:
        self.to_device = hs.get(ToDeviceHandler)
        self.keys = hs.get(E2eKeysHandler)
        self.fallback_keys = hs.get(E2eFallbackKeysStore)

    async def prepare(self) -> None:
        await self.to_device.prepare()

    def current_position(self) -> int:
        return self.to_device.streams.current_position(TO_DEVICE_STREAM)

    async def build(self, request: SyncRequest, since: int | None, upto: int,
                    response: dict[str, Any], context: dict[str, Any]) -> None:
        device_id = request.device_id
        if device_id is None:
            return
        events = await self.to_device.messages_for_sync(request.user_id, device_id, since, upto)
        response["to_device"] = {"events": events}
        response["device_one_time_keys_count"] = await self.keys.one_time_key_counts(request.user_id, device_id)
        unused = await self.fallback_keys.unused_fallback_key_types(request.user_id, device_id)
        response["device_unused_fallback_key_types"] = unused
        response["org.matrix.msc2732.device_unused_fallback_key_types"] = unused
