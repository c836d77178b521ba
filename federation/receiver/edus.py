"""EDUs received in transactions, and the registry of what handles each type.

``hs.get(EduRegistry).register(edu_type, handler)``; ``handler(origin, content)`` is awaited for
each EDU of that type, in transaction order. An EDU of an unregistered type is dropped; a
handler's failure is logged and never fails the transaction (EDUs are best effort).

Built in: ``m.typing``, ``m.receipt`` (only ``m.read``), ``m.presence`` and
``m.direct_to_device``. Each believes a user only from that user's own server, room EDUs only
for rooms whose server ACL allows the origin and where the user is joined, and presence only
for users who share a room with one of ours. ``m.device_list_update`` and
``m.signing_key_update`` go to the E2EE code's remote device-list cache
(homeserver/handlers/e2ee/remote_device_lists.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from federation.server_visibility import domain_of
from federation.transport.auth import FederationAuth
from homeserver.errors import MatrixError
from homeserver.events.identifiers import is_valid_room_id, is_valid_user_id
from homeserver.handlers.e2ee.remote_device_lists import RemoteDeviceLists
from homeserver.handlers.ephemeral.receipts import READ, ReceiptHandler
from homeserver.handlers.ephemeral.typing import TypingHandler
from homeserver.handlers.rooms.members import is_joined, users_sharing_a_room
from homeserver.server import Server
from storage.stores.device_inbox import DeviceInboxStore, InboxFull, ToDeviceMessage
from storage.stores.devices import DeviceStore
from storage.stores.presence import PresenceStore

logger = logging.getLogger(__name__)

EduHandler = Callable[[str, Any], Awaitable[None]]

#: How long a remote user shows as typing without a refresh (Synapse's federation timeout).
FEDERATION_TYPING_TIMEOUT_MS = 60_000
PRESENCE_STATES = ("online", "unavailable", "offline")
ALL_DEVICES = "*"
#: Most to-device messages one EDU may deliver.
MAX_TO_DEVICE_MESSAGES = 10_000


class EduRegistry:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self._handlers: dict[str, EduHandler] = {}
        builtin = BuiltinEdus(hs)
        self.register("m.typing", builtin.typing)
        self.register("m.receipt", builtin.receipt)
        self.register("m.presence", builtin.presence)
        self.register("m.direct_to_device", builtin.direct_to_device)
        remote_lists = hs.get(RemoteDeviceLists)
        self.register("m.device_list_update", remote_lists.on_device_list_update)
        self.register("m.signing_key_update", remote_lists.on_signing_key_update)

    def register(self, edu_type: str, handler: EduHandler) -> None:
        self._handlers[edu_type] = handler

    async def handle(self, origin: str, edu: Any) -> None:
        """One EDU of a transaction; never raises."""
        if not isinstance(edu, dict) or not isinstance(edu.get("edu_type"), str):
            return
        handler = self._handlers.get(edu["edu_type"])
        if handler is None:
            return
        try:
            await handler(origin, edu.get("content"))
        except MatrixError as exc:
            logger.info("%s EDU from %s ignored: %s", edu["edu_type"], origin, exc.message)
        except Exception:
            logger.exception("%s EDU from %s failed", edu["edu_type"], origin)


class BuiltinEdus:
    def __init__(self, hs: Server) -> None:
        self.hs = hs

    async def _room_member(self, origin: str, user_id: Any, room_id: Any) -> bool:
        """The user is the origin's, the origin passes the room's ACL, and the user is joined."""
        if not isinstance(user_id, str) or not is_valid_user_id(user_id) or domain_of(user_id) != origin:
            return False
        if not isinstance(room_id, str) or not is_valid_room_id(room_id):
            return False
        try:
            await self.hs.get(FederationAuth).check_server_acl(origin, room_id)
        except MatrixError:
            return False
        return await is_joined(self.hs, user_id, room_id)

    async def typing(self, origin: str, content: Any) -> None:
        if not isinstance(content, dict):
            return
        user_id, room_id = content.get("user_id"), content.get("room_id")
        if not await self._room_member(origin, user_id, room_id):
            return
        assert isinstance(user_id, str) and isinstance(room_id, str)
        typing = content.get("typing") is True
        await self.hs.get(TypingHandler).set_typing(user_id, room_id, typing, FEDERATION_TYPING_TIMEOUT_MS)

    async def receipt(self, origin: str, content: Any) -> None:
        if not isinstance(content, dict):
            return
        handler = self.hs.get(ReceiptHandler)
        for room_id, by_type in content.items():
            if not isinstance(by_type, dict) or not isinstance(by_type.get(READ), dict):
                continue
            for user_id, receipt in by_type[READ].items():
                if not isinstance(receipt, dict) or not await self._room_member(origin, user_id, room_id):
                    continue
                event_ids = receipt.get("event_ids")
                data = receipt.get("data")
                thread_id = data.get("thread_id") if isinstance(data, dict) else None
                if not isinstance(event_ids, list) or not isinstance(thread_id, str | None):
                    continue
                for event_id in event_ids:
                    if isinstance(event_id, str):
                        try:
                            await handler.send_receipt(user_id, room_id, READ, event_id, thread_id)
                        except MatrixError as exc:
                            logger.info("receipt from %s for %s ignored: %s", origin, event_id, exc.message)

    async def presence(self, origin: str, content: Any) -> None:
        if not self.hs.config.presence.enabled or not isinstance(content, dict):
            return
        updates = content.get("push")
        if not isinstance(updates, list):
            return
        store = self.hs.get(PresenceStore)
        now = int(time.time() * 1000)
        for update in updates:
            if not isinstance(update, dict):
                continue
            user_id, state = update.get("user_id"), update.get("presence")
            if not isinstance(user_id, str) or domain_of(user_id) != origin or state not in PRESENCE_STATES:
                continue
            audience = {u for u in await users_sharing_a_room(self.hs, user_id)
                        if domain_of(u) == self.hs.server_name}
            if not audience:
                continue  # only from servers that share a room with one of our users
            status_msg = update.get("status_msg")
            ago = update.get("last_active_ago")
            last_active = now - ago if isinstance(ago, int) and not isinstance(ago, bool) and ago >= 0 else now
            written = await store.set_presence(user_id, state, status_msg if isinstance(status_msg, str) else None,
                                               last_active, now)
            (await store.stream_writer()).announce(written.stream_id, users=audience)

    async def direct_to_device(self, origin: str, content: Any) -> None:
        """Deliver to our users' devices, once per (origin, message_id)."""
        if not isinstance(content, dict):
            return
        sender, event_type = content.get("sender"), content.get("type")
        message_id, by_user = content.get("message_id"), content.get("messages")
        if not isinstance(sender, str) or domain_of(sender) != origin or not isinstance(event_type, str) \
                or not isinstance(message_id, str) or not message_id or not isinstance(by_user, dict):
            return
        messages = await self._to_device_messages(sender, event_type, by_user)
        if not messages:
            return
        store = self.hs.get(DeviceInboxStore)
        writer = await store.stream_writer()
        async with writer.allocate(len(messages)) as stream_ids:
            try:
                stored = await store.add_messages(sender, f"federation {origin}", message_id, messages,
                                                  stream_ids, int(time.time() * 1000),
                                                  self.hs.config.to_device_inbox_limit)
            except InboxFull as full:
                logger.info("to-device message from %s dropped: the inbox of %s %s is full",
                            origin, full.user_id, full.device_id)
                stored = False
        if stored:
            writer.announce(stream_ids[-1], users={m.user_id for m in messages})

    async def _to_device_messages(self, sender: str, event_type: str,
                                  by_user: dict[str, Any]) -> list[ToDeviceMessage]:
        devices = self.hs.get(DeviceStore)
        messages: list[ToDeviceMessage] = []
        for user_id, by_device in by_user.items():
            if domain_of(user_id) != self.hs.server_name or not isinstance(by_device, dict):
                continue
            existing = {d.device_id for d in await devices.get_devices_by_user(user_id)}
            for device_id, body in by_device.items():
                if not isinstance(body, dict):
                    continue
                targets = sorted(existing) if device_id == ALL_DEVICES else \
                    ([device_id] if device_id in existing else [])
                messages.extend(ToDeviceMessage(user_id, t, sender, event_type, body) for t in targets)
        return messages[:MAX_TO_DEVICE_MESSAGES]
