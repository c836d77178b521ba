"""To-device messages: PUT /sendToDevice, delivery in /sync, acknowledgement and expiry.

A message stays in the recipient device's inbox until that device syncs with a
token covering it (Signal-Server's rule), or until ``to_device_retention``
passes. Each inbox holds at most ``to_device_inbox_limit`` messages; past that the sender
gets M_LIMIT_EXCEEDED (429), since the inbox drains as soon as the device syncs.
Messages for users on other servers become one ``m.direct_to_device`` EDU per
server (with a fresh ``message_id``, which the receiver deduplicates by), written to
the federation sender's outbox in the same transaction as the local messages, and
announced on the same stream; the sender (federation/sender/) delivers them.  ``m.room_key_request``
messages to other users count against ``rc_key_requests`` per sending device, one
action per recipient user; past the limit they are dropped silently, as Synapse does.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from twisted.internet import task
from twisted.internet.defer import Deferred

from homeserver.config.workers import runs_background_tasks
from homeserver.errors import MatrixError, too_large
from homeserver.events.identifiers import server_name_of
from homeserver.handlers.accounts.auth import now_ms
from homeserver.handlers.e2ee.e2e_json import require_object, require_string, require_user_id
from homeserver.handlers.ratelimit import RateLimiters
from homeserver.server import Server
from storage.stores.device_inbox import DeviceInboxStore, InboxFull, ToDeviceMessage
from storage.stores.devices import DeviceStore
from storage.stores.federation_queue import OutboxMessage
from storage.streams import Streams

logger = logging.getLogger(__name__)

TO_DEVICE_STREAM = "to_device"
ALL_DEVICES = "*"
MAX_MESSAGES_PER_REQUEST = 10_000
PURGE_INTERVAL_S = 3600.0
INBOX_FULL_RETRY_MS = 60_000
ROOM_KEY_REQUEST = "m.room_key_request"


def inbox_full(user_id: str, device_id: str, limit: int) -> MatrixError:
    return MatrixError(429, "M_LIMIT_EXCEEDED",
                       f"The to-device inbox of {user_id} device {device_id} is full "
                       f"({limit} undelivered messages); retry once it has synced",
                       retry_after_ms=INBOX_FULL_RETRY_MS)


class ToDeviceHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.server_name: str = hs.server_name
        self.store = hs.get(DeviceInboxStore)
        self.inbox_limit: int = hs.config.to_device_inbox_limit
        self.devices = hs.get(DeviceStore)
        self.streams: Streams = hs.get(Streams)
        self.retention_ms = int(hs.config.to_device_retention)
        self.key_request_limiter = hs.get(RateLimiters).key_requests
        whitelist = hs.config.federation_domain_whitelist
        self.domain_whitelist = frozenset(whitelist) if whitelist is not None else None
        self._purger: task.LoopingCall | None = None

    async def prepare(self) -> None:
        """Create the stream id generator and start the periodic purge (once, in the one process
        that runs background jobs: ``run_background_tasks_on``, docs/workers.md)."""
        await self.store.stream_writer()
        if self._purger is None and runs_background_tasks(self.hs.config):
            self._purger = task.LoopingCall(self._purge_in_background)
            self._purger.clock = self.hs.reactor
            self._purger.start(PURGE_INTERVAL_S, now=True)
            self.hs.reactor.addSystemEventTrigger("before", "shutdown", self._stop_purger)

    def _stop_purger(self) -> None:
        if self._purger is not None and self._purger.running:
            self._purger.stop()

    def _purge_in_background(self) -> Any:
        d = Deferred.fromCoroutine(self.purge_expired())
        d.addErrback(lambda failure: logger.error("to-device purge failed: %s", failure.getErrorMessage()))
        return d

    async def purge_expired(self) -> int:
        removed = await self.store.purge_older_than(now_ms(self.hs) - self.retention_ms)
        if removed:
            logger.info("purged %d to-device messages older than the retention period", removed)
        return removed

    async def send(self, sender_user_id: str, sender_device_id: str, event_type: str, txn_id: str,
                   body: dict[str, Any]) -> dict[tuple[str, str], int]:
        """Store and announce; returns each local recipient device's stream position (empty on a retry)."""
        by_user = require_object(body.get("messages"), "messages")
        messages: list[ToDeviceMessage] = []
        remote: dict[str, dict[str, Any]] = {}  # destination -> {user_id: {device_id: content}}
        for user_id, by_device in by_user.items():
            require_user_id(user_id, "messages")
            by_device = require_object(by_device, f"messages[{user_id}]")
            for device_id, content in by_device.items():
                require_string(device_id, "device IDs")
                require_object(content, f"messages[{user_id}][{device_id}]")
            if event_type == ROOM_KEY_REQUEST and user_id != sender_user_id and \
                    self.key_request_limiter.retry_after(f"{sender_user_id} {sender_device_id}") is not None:
                logger.info("dropping room key requests from %s to %s: rate limited", sender_user_id, user_id)
                continue
            destination = server_name_of(user_id)
            if destination != self.server_name:
                if self.domain_whitelist is None or destination in self.domain_whitelist:
                    remote.setdefault(destination, {})[user_id] = dict(by_device)
                continue  # (a server outside federation_domain_whitelist gets nothing)
            existing = {d.device_id for d in await self.devices.get_devices_by_user(user_id)}
            for device_id, content in by_device.items():
                targets = sorted(existing) if device_id == ALL_DEVICES else \
                    ([device_id] if device_id in existing else [])
                messages.extend(ToDeviceMessage(user_id, target, sender_user_id, event_type, content)
                                for target in targets)
            if len(messages) > MAX_MESSAGES_PER_REQUEST:
                raise too_large(f"At most {MAX_MESSAGES_PER_REQUEST} to-device messages per request")
        writer = await self.store.stream_writer()
        outbox = [OutboxMessage(destination, message_id, {
            "sender": sender_user_id, "type": event_type, "message_id": message_id, "messages": by_device})
            for destination, by_device in remote.items() for message_id in [secrets.token_urlsafe(12)]]
        if not messages and not outbox:
            return {}
        async with writer.allocate(len(messages) + len(outbox)) as ids:
            stream_ids, outbox_ids = ids[:len(messages)], ids[len(messages):]
            try:
                stored = await self.store.add_messages(sender_user_id, sender_device_id, txn_id, messages,
                                                       stream_ids, now_ms(self.hs), self.inbox_limit,
                                                       outbox, outbox_ids)
            except InboxFull as full:
                raise inbox_full(full.user_id, full.device_id, self.inbox_limit) from None
        if stored:
            # Remote recipients are named too: the federation sender wakes their servers from it.
            users = {m.user_id for m in messages} | {u for by_device in remote.values() for u in by_device}
            writer.announce(ids[-1], users=users)
            return {(m.user_id, m.device_id): position for m, position in zip(messages, stream_ids, strict=True)}
        return {}

    async def messages_for_sync(self, user_id: str, device_id: str, since: int | None,
                                upto: int) -> list[dict[str, Any]]:
        """Messages in (since, upto] in stream order; those at or below ``since`` are acknowledged."""
        after = since or 0
        if since:
            await self.store.delete_acknowledged(user_id, device_id, since)
        if upto <= after:
            return []
        return [event for _, event in
                await self.store.get_messages(user_id, device_id, after, upto, 2 * self.inbox_limit)]
