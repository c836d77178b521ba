"""Message retention (MSC1763, as Synapse implements it; docs/retention.md).

A room's policy is its m.room.retention state event (``max_lifetime``, ``min_lifetime``, in
ms), or the config's ``default_policy``. Each configured purge job runs every ``interval``
on the persisted timer service (so a restart does not reset its schedule) and deletes, in
the rooms whose max_lifetime it covers, the message events older than that lifetime
(storage/stores/retention.py), never state events nor a room's latest event. A run is a
job of the shared registry (homeserver/handlers/jobs.py): logged every 10 s with its
percentage of rooms done, and listed by the admin API.
"""

from __future__ import annotations

import logging
from typing import Any

from twisted.internet.defer import Deferred

from homeserver.config.retention import PurgeJob, RetentionSection
from homeserver.config.workers import runs_background_tasks
from homeserver.errors import bad_json, invalid_param
from homeserver.handlers.jobs import Job, JobRegistry
from homeserver.handlers.timers import TimerService
from homeserver.server import Server
from storage.stores.events import EventStore
from storage.stores.retention import RetentionStore

logger = logging.getLogger(__name__)

RETENTION_TIMER = "retention_purge"
JOB_KIND = "retention_purge"
RETENTION_EVENT = "m.room.retention"
#: Events deleted per transaction.
PURGE_BATCH = 500
MAX_LIFETIME_MS = 2**53 - 1


def _lifetime(content: dict[str, Any], key: str) -> int | None:
    value = content.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_json(f"'{key}' must be an integer")
    if value < 0 or value > MAX_LIFETIME_MS:
        raise bad_json(f"'{key}' must be a non-negative integer of milliseconds")
    return value


class RetentionHandler:
    def __init__(self, hs: Server) -> None:
        self.config: RetentionSection = hs.config.retention
        self.store = hs.get(RetentionStore)
        self.events = hs.get(EventStore)
        self.timers = hs.get(TimerService)
        self.registry = hs.get(JobRegistry)
        self._jobs = {job.job_id: job for job in self.config.jobs()}
        self._running: dict[str, Job] = {}
        self._next_run: dict[str, int] = {}
        #: The purges run in one process only: ``run_background_tasks_on`` (docs/workers.md).
        self.purges_here = self.config.enabled and runs_background_tasks(hs.config)
        if self.purges_here:
            self.timers.register(RETENTION_TIMER, self._on_timer)

    def check_policy(self, content: dict[str, Any]) -> None:
        """A local m.room.retention event: 400 for a malformed or out-of-range policy."""
        min_lifetime = _lifetime(content, "min_lifetime")
        max_lifetime = _lifetime(content, "max_lifetime")
        if min_lifetime is not None and max_lifetime is not None and min_lifetime > max_lifetime:
            raise bad_json("'min_lifetime' can't be greater than 'max_lifetime'")
        if max_lifetime is None or not self.config.enabled:
            return
        low, high = self.config.allowed_lifetime_min, self.config.allowed_lifetime_max
        if (low is not None and max_lifetime < low) or (high is not None and max_lifetime > high):
            raise invalid_param(f"'max_lifetime' must be between {low if low is not None else 0} and "
                                f"{high if high is not None else 'unbounded'} ms on this server")

    async def start(self) -> None:
        """Give each configured job its timer (a job's first run is one interval after it
        was first configured); forget the timers of jobs no longer configured."""
        if not self.purges_here:
            return
        now = self.timers.now_ms()
        self._next_run = await self.store.sync_job_timers(
            RETENTION_TIMER, {key: now + int(job.interval) for key, job in self._jobs.items()})
        for due in self._next_run.values():
            self.timers.timer_set(due)

    async def _on_timer(self, key: str) -> None:
        job = self._jobs.get(key)
        if job is None:
            return
        due = self.timers.now_ms() + int(job.interval)
        await self.store.move_timer(RETENTION_TIMER, key, due)
        self._next_run[key] = due
        self.timers.timer_set(due)
        if key not in self._running:  # a run outlasting its interval is not started twice
            # In the background: other timers (self-destructing messages) must not wait for it.
            Deferred.fromCoroutine(self.run_job(job))

    def effective_max_lifetime(self, room_max_lifetime: int | None) -> int | None:
        max_lifetime = room_max_lifetime if room_max_lifetime is not None else self.config.default_policy.max_lifetime
        return None if max_lifetime is None else self.config.clamp(int(max_lifetime))

    async def run_job(self, job: PurgeJob) -> Job | None:
        """One run of a purge job (None if the rooms could not even be listed: the next run tries)."""
        try:
            policies = await self.store.room_policies()
        except Exception:
            logger.exception("retention: listing rooms for purge job %s failed", job.job_id)
            return None
        rooms = []
        for policy in policies:
            lifetime = self.effective_max_lifetime(policy.max_lifetime)
            if lifetime is not None and job.covers(lifetime):
                rooms.append((policy.room_id, lifetime))
        run = self.registry.start(JOB_KIND, f"purge job {job.job_id}: rooms with max_lifetime in "
                                  f"({job.shortest_max_lifetime or 0}, {job.longest_max_lifetime or 'any'}] ms",
                                  total=len(rooms))
        run.details.update({"purge_job": job.job_id, "events_deleted": 0, "rooms": len(rooms)})
        self._running[job.job_id] = run
        try:
            for room_id, lifetime in rooms:
                run.details["events_deleted"] += await self.purge_room(room_id, self.timers.now_ms() - lifetime)
                run.advance(1)
        except Exception as exc:
            logger.exception("retention: purge job %s failed", job.job_id)
            run.fail(str(exc) or type(exc).__name__)
        else:
            run.finish()
        finally:
            del self._running[job.job_id]
        return run

    async def purge_room(self, room_id: str, before_ts: int) -> int:
        """Delete the room's message events older than ``before_ts``; how many."""
        deleted = 0
        while True:
            ids = await self.store.purge_batch(room_id, before_ts, PURGE_BATCH)
            for event_id in ids:
                self.events.invalidate(event_id)
            deleted += len(ids)
            if len(ids) < PURGE_BATCH:
                return deleted

    def status(self) -> dict[str, Any]:
        """For the admin API: the config, each job's schedule and its runs."""
        policy = self.config.default_policy
        runs = self.registry.jobs(JOB_KIND)
        return {
            "enabled": self.config.enabled,
            "default_policy": {"min_lifetime": policy.min_lifetime, "max_lifetime": policy.max_lifetime},
            "allowed_lifetime_min": self.config.allowed_lifetime_min,
            "allowed_lifetime_max": self.config.allowed_lifetime_max,
            "purge_jobs": [
                {"id": key, "shortest_max_lifetime": job.shortest_max_lifetime,
                 "longest_max_lifetime": job.longest_max_lifetime, "interval": job.interval,
                 "next_run_ts": self._next_run.get(key),
                 "running": key in self._running,
                 "last_run": next((r.describe() for r in runs if r.details.get("purge_job") == key), None)}
                for key, job in self._jobs.items()
            ] if self.config.enabled else [],
            "runs": [r.describe() for r in runs],
        }
