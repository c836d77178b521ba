"""The shared long-job registry: progress lines at least every 10 s (with a percentage when
the total is known), even while a job is stuck in one step, and the listing admins read.
Driven on a fake reactor clock, so "10 s" is exact and the test waits for nothing."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from twisted.internet.task import Clock

from homeserver.handlers.jobs import KEEP_FINISHED, LOG_EVERY_S, JobRegistry


class FakeHs:
    def __init__(self) -> None:
        self.reactor = Clock()


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "homeserver.handlers.jobs"]


def test_progress_is_logged_every_ten_seconds(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    hs: Any = FakeHs()
    registry = JobRegistry(hs)
    job = registry.start("retention_purge", "rooms in (0, 1h]", total=4)
    assert "started" in lines(caplog)[-1]
    job.advance(1)
    assert len(lines(caplog)) == 1  # not yet 10 s
    hs.reactor.advance(LOG_EVERY_S)
    assert lines(caplog)[-1].endswith("1/4 (25.0%), 10.0 s")
    job.advance(1)
    hs.reactor.advance(LOG_EVERY_S / 2)
    job.advance(1)  # 5 s since the last line: quiet
    assert len(lines(caplog)) == 2
    # No advance() at the 10 s mark (a job stuck in one step): the ticker says where it is.
    hs.reactor.advance(LOG_EVERY_S / 2)
    assert lines(caplog)[-1].endswith("3/4 (75.0%), 20.0 s")
    job.advance(1)
    assert len(lines(caplog)) == 3
    hs.reactor.advance(LOG_EVERY_S)
    assert "4/4 (100.0%), 30.0 s" in lines(caplog)[-1]
    job.finish()
    assert lines(caplog)[-1].endswith(": finished")
    count = len(lines(caplog))
    hs.reactor.advance(3 * LOG_EVERY_S)
    assert len(lines(caplog)) == count  # nothing running, nothing logged
    assert registry.running() == []
    described = registry.jobs("retention_purge")[0].describe()
    assert described["status"] == "finished" and described["percent"] == 100.0 and described["done"] == 4
    assert described["duration_ms"] == 30_000


def test_unknown_totals_failures_and_the_listing() -> None:
    hs: Any = FakeHs()
    registry = JobRegistry(hs)
    open_ended = registry.start("room_delete", "!a:x")
    assert open_ended.percent() is None and "2 done" in (open_ended.advance(2) or open_ended.progress_line())
    failed = registry.start("history_purge", "!b:x", total=10)
    failed.fail("database went away")
    failed.finish()  # a second end changes nothing
    assert failed.describe()["status"] == "failed" and failed.describe()["error"] == "database went away"
    assert [j.kind for j in registry.jobs()] == ["room_delete", "history_purge"]
    assert [j.kind for j in registry.running()] == ["room_delete"]
    for i in range(KEEP_FINISHED + 5):
        registry.start("x", str(i), total=1).finish()
    assert len(registry.jobs("x")) == KEEP_FINISHED
    assert registry.jobs("x")[0].description == str(KEEP_FINISHED + 4)  # newest first
