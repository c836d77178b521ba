"""Device-list updates out: ``m.device_list_update`` and ``m.signing_key_update`` for local users.

The ``device_lists`` stream records one row per changed device (its own stream id) or a row
without a device when cross-signing keys changed. For each row of a local user, every server
sharing a room with the user gets (persisted, through ``send_edu``):

- a changed or new device: ``m.device_list_update`` with its keys, ``stream_id`` (the row's id)
  and ``prev_id`` (the user's row before it), so the receiver can tell whether it missed one;
- a deleted device: the same with ``deleted: true``;
- a signed key that is a cross-signing key, or no device: ``m.signing_key_update`` with the
  current master and self-signing keys.

Display names go out only with ``allow_device_name_lookup_over_federation``. Rows of remote
users (our cache's changes) are not ours to send. A crash between a row's commit and its EDU
being queued loses that EDU; the next update's ``prev_id`` then shows the gap and the receiver
resyncs from ``/user/devices``, which is the protocol's own repair.
"""

from __future__ import annotations

import logging
from typing import Any

from federation.sender.destinations import server_of, servers_sharing_a_room
from federation.sender.edus import _Serial
from federation.sender.sender import FederationSender
from homeserver.handlers.e2ee.cross_signing_view import KeyViewer, public_key_of
from homeserver.handlers.e2ee.e2e_keys import E2eKeysHandler
from homeserver.server import Server
from storage.stores.device_lists import DeviceListsStore
from storage.stores.devices import DeviceStore
from storage.streams import StreamAdvance, Streams

logger = logging.getLogger(__name__)

DEVICE_LIST_UPDATE = "m.device_list_update"
SIGNING_KEY_UPDATE = "m.signing_key_update"


class DeviceListForwarder:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.server_name: str = hs.server_name
        self.sender = hs.get(FederationSender)
        self.store = hs.get(DeviceListsStore)
        self.devices = hs.get(DeviceStore)
        self.names: bool = hs.config.allow_device_name_lookup_over_federation
        self._seen = 0
        self._serial = _Serial("device lists", self._forward)

    async def start(self) -> None:
        self._seen = (await self.store.stream_writer()).get_current_token()
        self.hs.get(Streams).add_listener(self._on_advance)

    def _on_advance(self, advance: StreamAdvance) -> None:
        if advance.stream == "device_lists":
            self._serial.trigger()

    async def _forward(self) -> None:
        upto = self.hs.get(Streams).current_position("device_lists")
        while self._seen < upto:
            changes = await self.store.get_changes(self._seen, upto)
            self._seen = upto
            for stream_id, user_id, device_id in changes:
                if server_of(user_id) != self.server_name:
                    continue
                try:
                    await self._send_change(stream_id, user_id, device_id)
                except Exception:
                    logger.exception("device list update %d of %s: sending failed", stream_id, user_id)
            upto = self.hs.get(Streams).current_position("device_lists")

    async def _send_change(self, stream_id: int, user_id: str, device_id: str | None) -> None:
        destinations = await servers_sharing_a_room(self.hs, user_id)
        if not destinations:
            return
        edu_type, content = await self._content(stream_id, user_id, device_id)
        for destination in sorted(destinations):
            await self.sender.send_edu(destination, edu_type, content)

    async def _content(self, stream_id: int, user_id: str, device_id: str | None) -> tuple[str, dict[str, Any]]:
        cross_signing = (await self.hs.get(KeyViewer).decorate("", {}, [user_id]))
        master = cross_signing["master_keys"].get(user_id)
        self_signing = cross_signing["self_signing_keys"].get(user_id)
        signing_public = {public_key_of(k) for k in (master, self_signing) if k is not None}
        if device_id is None or device_id in signing_public:
            content: dict[str, Any] = {"user_id": user_id}
            if master is not None:
                content["master_key"] = master
            if self_signing is not None:
                content["self_signing_key"] = self_signing
            return SIGNING_KEY_UPDATE, content
        prev = await self.store.previous_stream_id(user_id, stream_id)
        content = {"user_id": user_id, "device_id": device_id, "stream_id": stream_id,
                   "prev_id": [] if prev is None else [prev]}
        device = await self.devices.get_device(user_id, device_id)
        keys = (await self.hs.get(E2eKeysHandler).local_device_keys({user_id: [device_id]}, with_names=False)) \
            .get(user_id, {}).get(device_id)
        if device is None:
            content["deleted"] = True
            return DEVICE_LIST_UPDATE, content
        if keys is not None:
            signed = await self.hs.get(KeyViewer).decorate("", {user_id: {device_id: keys}}, [user_id])
            content["keys"] = {k: v for k, v in signed["device_keys"][user_id][device_id].items() if k != "unsigned"}
        if self.names and device.display_name is not None:
            content["device_display_name"] = device.display_name
        return DEVICE_LIST_UPDATE, content
