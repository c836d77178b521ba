"""Membership hygiene and application messages.

Room membership is the authority on who may be in a group. When a user leaves
(or is kicked or banned) or a device is deleted, the leaves it holds become
pending removals: sync shows them to the remaining members, one of whom commits
the removal. Once a removal has been pending for ``mls_removal_grace``, the
room's application messages are refused until it is committed, so a departed
device never reads what is sent after it left. Application messages must also
carry the room's group_id and an epoch no more than ``mls_epoch_lag`` behind.
"""

from __future__ import annotations

import logging
from typing import Any

from twisted.internet import task
from twisted.internet.defer import Deferred

from homeserver.config.workers import runs_background_tasks
from homeserver.errors import MatrixError, bad_json, invalid_param
from homeserver.handlers.accounts.auth import now_ms
from homeserver.handlers.accounts.devices import DeviceHandler
from homeserver.handlers.mls.common import bad_epoch, decode_b64, parse_or_400
from homeserver.handlers.mls.groups import MlsGroups
from homeserver.mls import wire
from homeserver.pipeline import EventPipeline
from homeserver.pipeline.types import PersistedBatch
from homeserver.server import Server
from storage.stores.mls import MlsStore

logger = logging.getLogger(__name__)

PURGE_INTERVAL_S = 3600.0
GONE = ("leave", "ban")


class MlsHygiene:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.store = hs.get(MlsStore)
        self.groups = hs.get(MlsGroups)
        self.grace_ms = int(hs.config.mls_removal_grace)
        self.lag: int = hs.config.mls_epoch_lag
        self.retention_ms = int(hs.config.mls_commit_retention)
        self._purger: task.LoopingCall | None = None
        self._started = False

    def start(self) -> None:
        """Listen for departures and start the log's retention purge (once, at start-up)."""
        if self._started:
            return
        self._started = True
        self.hs.get(EventPipeline).add_persisted_listener(self._on_persisted)
        self.hs.get(DeviceHandler).on_devices_deleted.append(self._on_devices_deleted)
        if runs_background_tasks(self.hs.config):
            self.start_purge()

    def start_purge(self) -> None:
        """The commit log's retention purge, in the process that runs background jobs."""
        if self._purger is not None:
            return
        self._purger = task.LoopingCall(self._purge_in_background)
        self._purger.clock = self.hs.reactor
        self._purger.start(PURGE_INTERVAL_S, now=True)
        self.hs.reactor.addSystemEventTrigger("before", "shutdown", self._stop)

    def _stop(self) -> None:
        if self._purger is not None and self._purger.running:
            self._purger.stop()

    def _purge_in_background(self) -> Any:
        d = Deferred.fromCoroutine(self.purge_expired())
        d.addErrback(lambda failure: logger.error("MLS log purge failed: %s", failure.getErrorMessage()))
        return d

    async def purge_expired(self) -> int:
        return await self.store.purge_older_than(now_ms(self.hs) - self.retention_ms)

    # -- departures ------------------------------------------------------------------------

    async def _on_persisted(self, batch: PersistedBatch) -> None:
        gone = {stored.event.state_key for stored in batch.timeline_events()
                if stored.event.type == "m.room.member" and stored.event.membership in GONE
                and stored.event.state_key is not None}
        for user_id in gone:
            await self._mark(batch.room_id, await self.store.user_leaves(batch.room_id, user_id))

    async def _on_devices_deleted(self, user_id: str, device_ids: list[str]) -> None:
        for device_id in device_ids:
            by_room: dict[str, list[int]] = {}
            for room_id, leaf in await self.store.device_leaves(user_id, device_id):
                by_room.setdefault(room_id, []).append(leaf)
            for room_id, leaves in by_room.items():
                await self._mark(room_id, leaves)

    async def _mark(self, room_id: str, leaves: list[int]) -> None:
        if not leaves:
            return
        writer = await self.store.stream_writer()
        async with writer.allocate(1) as ids:
            await self.store.add_pending_removals(room_id, leaves, ids[0], now_ms(self.hs))
        writer.announce(ids[0], rooms={room_id})

    # -- application messages --------------------------------------------------------------

    async def check_message(self, user_id: str, room_id: str, content: dict[str, Any]) -> None:
        """Refuse an org.vignette.mls.message whose group, epoch or timing is wrong (400/403)."""
        await self.groups.require_member_of_mls_room(user_id, room_id)
        if "message" not in content:
            raise bad_json("message is required: the base64 of an MLS PrivateMessage")
        data = decode_b64(content["message"], "message", int(self.hs.config.mls_max_message_size))
        framed = parse_or_400(wire.parse_framed, data, "message")
        current = await self.store.current_epoch(room_id)
        if framed.wire_format != wire.WIRE_PRIVATE or framed.content_type != wire.CONTENT_APPLICATION:
            raise invalid_param("message must be an MLS PrivateMessage with application content")
        if framed.group_id != room_id.encode():
            raise bad_epoch("The message is for another group: group_id must be the room ID", current)
        if current == 0:
            raise bad_epoch("The room's MLS group has no accepted commit yet", current)
        if framed.epoch > current or framed.epoch < current - self.lag:
            raise bad_epoch(f"The message is for epoch {framed.epoch}; the group is at {current} and "
                            f"accepts messages at most {self.lag} epochs behind", current)
        overdue = [p for p in await self.store.pending_removals(room_id)
                   if p.since_ms + self.grace_ms <= now_ms(self.hs)]
        if overdue:
            leaf = overdue[0].leaf
            raise MatrixError(403, "M_FORBIDDEN",
                              f"{leaf.user_id} device {leaf.device_id} (leaf {leaf.index}) left the room "
                              "and must be removed from the group by a commit first",
                              current_epoch=current)
