"""What room deletion and history purges share: a status per request, kept in memory (as
Synapse keeps them: a restart forgets the statuses, not what was deleted), one request per
room at a time, the work run as a job of the shared registry (progress logged every 10 s,
listed by the admin API), and events deleted in batches.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import attrs
from twisted.internet.defer import Deferred

from homeserver.errors import MatrixError, not_found
from homeserver.handlers.jobs import Job, JobRegistry
from homeserver.server import Server
from storage.stores.events import EventStore

logger = logging.getLogger(__name__)

#: Statuses kept per kind (the oldest forgotten first).
KEEP_STATUSES = 1000
#: Events deleted per transaction.
PURGE_BATCH = 500
ENDED = ("complete", "failed")


@attrs.define
class RoomTask:
    """One admin request on a room; subclasses say how it answers over the API."""

    task_id: str
    room_id: str
    status: str
    error: str | None = None
    job: Job | None = None

    @property
    def running(self) -> bool:
        return self.status not in ENDED


T = TypeVar("T", bound=RoomTask)


class RoomTasks(Generic[T]):
    """The requests of one kind (``room_deletion``, ``history_purge``) and their statuses."""

    def __init__(self, hs: Server, kind: str, what: str) -> None:
        self.kind = kind
        self.what = what
        self.registry = hs.get(JobRegistry)
        self.events = hs.get(EventStore)
        self._tasks: dict[str, T] = {}

    def new(self, room_id: str, make: Callable[[str, str], T]) -> T:
        """A new request for the room (``make(task_id, room_id)``); 400 while one runs."""
        if any(t.room_id == room_id and t.running for t in self._tasks.values()):
            raise MatrixError(400, "M_UNKNOWN", f"A {self.what} of this room is already running")
        while len(self._tasks) >= KEEP_STATUSES:
            del self._tasks[next(iter(self._tasks))]
        task = make(secrets.token_urlsafe(12), room_id)
        self._tasks[task.task_id] = task
        return task

    def get(self, task_id: str) -> T:
        task = self._tasks.get(task_id)
        if task is None:
            raise not_found(f"No {self.what} with ID {task_id}")
        return task

    def for_room(self, room_id: str) -> list[T]:
        return [t for t in self._tasks.values() if t.room_id == room_id]

    def start(self, task: T, description: str, work: Callable[[Job], Awaitable[None]]) -> None:
        """Run in the background; the caller answers with the task's ID at once."""
        Deferred.fromCoroutine(self.run(task, description, work))

    async def run(self, task: T, description: str, work: Callable[[Job], Awaitable[None]]) -> None:
        """``work(job)`` as a job of the registry; the task ends ``complete`` or ``failed``."""
        job = self.registry.start(self.kind, description)
        task.job = job
        try:
            await work(job)
        except Exception as exc:
            logger.exception("%s of %s failed", self.what, task.room_id)
            task.status, task.error = "failed", str(exc) or type(exc).__name__
            job.fail(task.error)
        else:
            task.status = "complete"
            job.finish()

    async def purge_in_batches(self, job: Job, purge_batch: Callable[[int], Awaitable[list[str]]]) -> int:
        """Call ``purge_batch(PURGE_BATCH)`` (one transaction, the IDs it deleted) until a
        short batch; cached copies of the events go, and the job advances. The count."""
        deleted = 0
        while True:
            ids = await purge_batch(PURGE_BATCH)
            for event_id in ids:
                self.events.invalidate(event_id)
            deleted += len(ids)
            job.advance(len(ids))
            if len(ids) < PURGE_BATCH:
                return deleted
