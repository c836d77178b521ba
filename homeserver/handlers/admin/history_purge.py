"""Purging a room's history (Synapse's ``POST /_synapse/admin/v1/purge_history/{room_id}``).

Deletes the room's message events older than a point (an event, or a timestamp), with the
retention purge's own batches: state events, the latest event and the forward
extremities stay, so the room goes on working. Without ``delete_local_events`` our own
users' events are kept (Synapse's default). Each purge is a ``history_purge`` job of the
shared registry; its status is polled with the ``purge_id``.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import attrs
from twisted.internet.defer import Deferred

from homeserver.errors import MatrixError, invalid_param, not_found
from homeserver.handlers.admin.rooms import check_room_id
from homeserver.handlers.jobs import Job, JobRegistry
from homeserver.server import Server
from storage.stores.events import EventStore
from storage.stores.retention import RetentionStore
from storage.stores.rooms import RoomStore

logger = logging.getLogger(__name__)

JOB_KIND = "history_purge"
PURGE_BATCH = 500
KEEP_STATUSES = 1000


@attrs.define
class HistoryPurge:
    purge_id: str
    room_id: str
    status: str = "active"
    error: str | None = None
    job: Job | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status}
        if self.error is not None:
            body["error"] = self.error
        if self.job is not None:
            body["events_deleted"] = self.job.done
        return body


class HistoryPurgeHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.store = hs.get(RetentionStore)
        self.events = hs.get(EventStore)
        self.rooms = hs.get(RoomStore)
        self.registry = hs.get(JobRegistry)
        self._purges: dict[str, HistoryPurge] = {}

    async def start(self, room_id: str, up_to_event_id: str | None, up_to_ts: int | None,
                    delete_local_events: bool) -> str:
        check_room_id(room_id)
        if await self.rooms.get_room(room_id) is None:
            raise not_found("Unknown room")
        before_ts = await self._cutoff(room_id, up_to_event_id, up_to_ts)
        if any(p.room_id == room_id and p.status == "active" for p in self._purges.values()):
            raise MatrixError(400, "M_UNKNOWN", "A history purge of this room is already running")
        while len(self._purges) >= KEEP_STATUSES:
            del self._purges[next(iter(self._purges))]
        purge = HistoryPurge(secrets.token_urlsafe(12), room_id)
        self._purges[purge.purge_id] = purge
        keep = None if delete_local_events else "%:" + self.hs.server_name.replace("!", "!!").replace(
            "%", "!%").replace("_", "!_")
        Deferred.fromCoroutine(self._run(purge, before_ts, keep))
        return purge.purge_id

    async def _cutoff(self, room_id: str, up_to_event_id: str | None, up_to_ts: int | None) -> int:
        if up_to_event_id is not None:
            stored = await self.events.get_event(up_to_event_id)
            if stored is None or stored.event.room_id != room_id:
                raise not_found("Event not found in this room")
            return int(stored.event.origin_server_ts)
        if up_to_ts is None:
            raise invalid_param("Give purge_up_to_event_id or purge_up_to_ts")
        return up_to_ts

    async def _run(self, purge: HistoryPurge, before_ts: int, keep: str | None) -> None:
        job = self.registry.start(JOB_KIND, f"purging history of {purge.room_id} before {before_ts}")
        purge.job = job
        try:
            while True:
                ids = await self.store.purge_batch(purge.room_id, before_ts, PURGE_BATCH, keep)
                for event_id in ids:
                    self.events.invalidate(event_id)
                job.advance(len(ids))
                if len(ids) < PURGE_BATCH:
                    break
        except Exception as exc:
            logger.exception("history purge of %s failed", purge.room_id)
            purge.status, purge.error = "failed", str(exc) or type(exc).__name__
            job.fail(purge.error)
        else:
            purge.status = "complete"
            job.finish()

    def status(self, purge_id: str) -> dict[str, Any]:
        purge = self._purges.get(purge_id)
        if purge is None:
            raise not_found(f"No purge with ID {purge_id}")
        return purge.to_json()
