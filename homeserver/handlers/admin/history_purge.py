"""Purging a room's history (Synapse's ``POST /_synapse/admin/v1/purge_history/{room_id}``).

Deletes the room's message events older than a point (an event, or a timestamp), with the
retention purge's own batches: state events, the latest event and the forward
extremities stay, so the room goes on working. Without ``delete_local_events`` our own
users' events are kept (Synapse's default). Each purge is a ``history_purge`` job of the
shared registry (room_jobs.py, with room deletion); its status is polled with the ``purge_id``.
"""

from __future__ import annotations

from typing import Any

import attrs

from homeserver.errors import invalid_param, not_found
from homeserver.handlers.admin.room_jobs import RoomTask, RoomTasks
from homeserver.handlers.admin.rooms import check_room_id
from homeserver.handlers.jobs import Job
from homeserver.server import Server
from storage.stores.events import EventStore
from storage.stores.retention import RetentionStore
from storage.stores.rooms import RoomStore

JOB_KIND = "history_purge"


@attrs.define
class HistoryPurge(RoomTask):
    status: str = "active"

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
        self.tasks: RoomTasks[HistoryPurge] = RoomTasks(hs, JOB_KIND, "history purge")

    async def start(self, room_id: str, up_to_event_id: str | None, up_to_ts: int | None,
                    delete_local_events: bool) -> str:
        check_room_id(room_id)
        if await self.rooms.get_room(room_id) is None:
            raise not_found("Unknown room")
        before_ts = await self._cutoff(room_id, up_to_event_id, up_to_ts)
        purge = self.tasks.new(room_id, HistoryPurge)
        keep = None if delete_local_events else "%:" + self.hs.server_name.replace("!", "!!").replace(
            "%", "!%").replace("_", "!_")

        async def work(job: Job) -> None:
            await self.tasks.purge_in_batches(
                job, lambda size: self.store.purge_batch(room_id, before_ts, size, keep))

        self.tasks.start(purge, f"purging history of {room_id} before {before_ts}", work)
        return purge.task_id

    async def _cutoff(self, room_id: str, up_to_event_id: str | None, up_to_ts: int | None) -> int:
        if up_to_event_id is not None:
            stored = await self.events.get_event(up_to_event_id)
            if stored is None or stored.event.room_id != room_id:
                raise not_found("Event not found in this room")
            return int(stored.event.origin_server_ts)
        if up_to_ts is None:
            raise invalid_param("Give purge_up_to_event_id or purge_up_to_ts")
        return up_to_ts

    def status(self, purge_id: str) -> dict[str, Any]:
        return self.tasks.get(purge_id).to_json()
