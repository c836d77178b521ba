"""rc_federation's limiter, driven by a fake clock: inbound federation is not built yet,
so this is the contract it will use (sleep past sleep_limit, refuse past reject_limit,
at most `concurrent` at once per origin)."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from homeserver.config.ratelimits import FederationRateLimits
from homeserver.errors import MatrixError
from homeserver.handlers import federation_ratelimit
from homeserver.handlers.federation_ratelimit import FederationRateLimiter


class Request:
    """One inbound request that holds its slot until ``finish`` is called."""

    def __init__(self, limiter: FederationRateLimiter, origin: str) -> None:
        self.started = False
        self.error: MatrixError | None = None
        self._release: Deferred[None] = Deferred()
        self.done = Deferred.fromCoroutine(self._run(limiter, origin))

    async def _run(self, limiter: FederationRateLimiter, origin: str) -> None:
        try:
            async with limiter.ratelimit(origin):
                self.started = True
                await self._release
        except MatrixError as exc:
            self.error = exc

    def finish(self) -> None:
        self._release.callback(None)


def make(**settings: Any) -> tuple[Clock, FederationRateLimiter]:
    clock = Clock()
    return clock, FederationRateLimiter(clock, FederationRateLimits(**settings))


def test_at_most_concurrent_requests_run_and_the_rest_queue_in_order() -> None:
    _, limiter = make(concurrent=2, sleep_limit=100, reject_limit=100)
    requests = [Request(limiter, "a.example") for _ in range(4)]
    assert [r.started for r in requests] == [True, True, False, False]
    other_origin = Request(limiter, "b.example")
    assert other_origin.started  # each origin has its own slots
    requests[0].finish()
    assert [r.started for r in requests] == [True, True, True, False]
    requests[1].finish()
    assert requests[3].started


def test_requests_past_sleep_limit_wait_sleep_delay() -> None:
    clock, limiter = make(sleep_limit=2, sleep_delay=500, reject_limit=100, concurrent=100)
    requests = [Request(limiter, "a.example") for _ in range(3)]
    assert [r.started for r in requests] == [True, True, False]
    clock.advance(0.499)
    assert not requests[2].started
    clock.advance(0.001)
    assert requests[2].started


def test_requests_are_refused_while_more_than_reject_limit_wait() -> None:
    _, limiter = make(window_size=1000, sleep_limit=100, reject_limit=2, concurrent=1)
    running = Request(limiter, "a.example")
    waiting = [Request(limiter, "a.example") for _ in range(3)]  # 0, 1, then 2 were waiting: admitted
    assert running.started and not any(r.started or r.error for r in waiting)
    refused = Request(limiter, "a.example").error  # 3 waiting > reject_limit
    assert refused is not None and (refused.status, refused.errcode) == (429, "M_LIMIT_EXCEEDED")
    assert refused.extra["retry_after_ms"] == 10  # window_size / sleep_limit, as Synapse says
    running.finish()
    assert waiting[0].started
    later = Request(limiter, "a.example")  # two waiting again: admitted
    assert later.error is None and not later.started


def test_idle_origins_are_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(federation_ratelimit, "SWEEP_EVERY", 5)
    clock, limiter = make(window_size=1000)
    Request(limiter, "a.example").finish()
    assert limiter.tracked_origins() == 1  # its request is still inside the window
    clock.advance(1.0)
    for _ in range(5):  # a.example never comes back; a sweep drops it
        Request(limiter, "b.example").finish()
    assert limiter.tracked_origins() == 1  # only b.example, still inside its window


def test_disabled_never_waits_or_refuses() -> None:
    _, limiter = make(enabled=False, reject_limit=1, concurrent=1)
    requests = [Request(limiter, "a.example") for _ in range(5)]
    assert all(r.started and r.error is None for r in requests)
