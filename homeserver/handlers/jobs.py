"""Long-running jobs (retention purges now; room deletion and history purges next): one
registry that logs each running job's progress at least every ``LOG_EVERY_S`` seconds, with
a percentage when the total is known, and lists them for the admin API.

    job = hs.get(JobRegistry).start("retention_purge", "purging rooms in (1d, 30d]", total=len(rooms))
    ...
    job.advance(1)            # after each unit of work
    job.finish()              # or job.fail("why")

A finished job stays listed (the latest ``KEEP_FINISHED``), so an operator can see how the
last run went.
"""

from __future__ import annotations

import logging
import secrets
from collections import deque
from typing import Any

import attrs
from twisted.internet.interfaces import IDelayedCall

from homeserver.server import Server

logger = logging.getLogger(__name__)

LOG_EVERY_S = 10.0
KEEP_FINISHED = 50


@attrs.define(eq=False)
class Job:
    registry: JobRegistry = attrs.field(repr=False)
    job_id: str
    kind: str
    description: str
    total: int | None
    started_s: float
    done: int = 0
    finished_s: float | None = None
    error: str | None = None
    #: What the owner wants shown besides the counts (e.g. events deleted).
    details: dict[str, Any] = attrs.field(factory=dict)
    last_logged_s: float = 0.0

    @property
    def running(self) -> bool:
        return self.finished_s is None

    def percent(self) -> float | None:
        if not self.total:
            return None
        return min(100.0, 100.0 * self.done / self.total)

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.registry.now() - self.last_logged_s >= LOG_EVERY_S:
            self.registry.log_progress(self)

    def finish(self) -> None:
        self._end(None)

    def fail(self, error: str) -> None:
        self._end(error)

    def _end(self, error: str | None) -> None:
        if self.finished_s is not None:
            return
        self.finished_s = self.registry.now()
        self.error = error
        self.registry.ended(self)

    def duration_ms(self) -> int:
        end = self.finished_s if self.finished_s is not None else self.registry.now()
        return int((end - self.started_s) * 1000)

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.job_id, "kind": self.kind, "description": self.description,
            "status": "running" if self.running else ("failed" if self.error else "finished"),
            "done": self.done, "total": self.total, "percent": self.percent(),
            "started_ts": int(self.started_s * 1000),
            "finished_ts": None if self.finished_s is None else int(self.finished_s * 1000),
            "duration_ms": self.duration_ms(), "error": self.error, **self.details,
        }

    def progress_line(self) -> str:
        percent = self.percent()
        amount = f"{self.done}/{self.total} ({percent:.1f}%)" if percent is not None else f"{self.done} done"
        return f"job {self.job_id} {self.kind} ({self.description}): {amount}, {self.duration_ms() / 1000:.1f} s"


class JobRegistry:
    def __init__(self, hs: Server) -> None:
        self.reactor = hs.reactor
        self._running: dict[str, Job] = {}
        self._finished: deque[Job] = deque(maxlen=KEEP_FINISHED)
        self._ticker: IDelayedCall | None = None

    def now(self) -> float:
        return float(self.reactor.seconds())

    def start(self, kind: str, description: str, total: int | None = None) -> Job:
        job = Job(self, secrets.token_hex(6), kind, description, total, self.now())
        job.last_logged_s = job.started_s
        self._running[job.job_id] = job
        logger.info("job %s %s started: %s%s", job.job_id, kind, description,
                    f" ({total} to do)" if total is not None else "")
        self._arm()
        return job

    def log_progress(self, job: Job) -> None:
        job.last_logged_s = self.now()
        logger.info("%s", job.progress_line())

    def ended(self, job: Job) -> None:
        self._running.pop(job.job_id, None)
        self._finished.appendleft(job)
        if job.error:
            logger.warning("%s: failed: %s", job.progress_line(), job.error)
        else:
            logger.info("%s: finished", job.progress_line())

    def running(self, kind: str | None = None) -> list[Job]:
        return [j for j in self._running.values() if kind is None or j.kind == kind]

    def jobs(self, kind: str | None = None) -> list[Job]:
        """Running jobs (oldest first), then finished ones (newest first)."""
        return self.running(kind) + [j for j in self._finished if kind is None or j.kind == kind]

    def _arm(self) -> None:
        if self._ticker is None or not self._ticker.active():
            self._ticker = self.reactor.callLater(LOG_EVERY_S, self._tick)

    def _tick(self) -> None:
        """A job stuck in one long step still gets its line every LOG_EVERY_S."""
        self._ticker = None
        for job in list(self._running.values()):
            if self.now() - job.last_logged_s >= LOG_EVERY_S - 0.001:
                self.log_progress(job)
        if self._running:
            self._arm()
