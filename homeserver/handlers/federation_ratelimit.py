"""Inbound federation request limiting per origin server (``rc_federation``).

Synapse's scheme, so operators' numbers mean the same here.  For each origin:

- a request that arrives when more than ``sleep_limit`` requests came in the
  last ``window_size`` ms first waits ``sleep_delay`` ms;
- at most ``concurrent`` requests run at once; the rest queue in arrival order;
- a request that arrives while more than ``reject_limit`` are already waiting
  (sleeping or queued) is refused: 429 M_LIMIT_EXCEEDED, retry after
  ``window_size / sleep_limit`` ms.

The inbound federation resource wraps each request in it::

    async with hs.get(RateLimiters).federation.ratelimit(origin):
        ...handle the request...
"""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from twisted.internet import task
from twisted.internet.defer import DeferredSemaphore

from homeserver.config.ratelimits import FederationRateLimits
from homeserver.errors import limit_exceeded

# Idle origins are swept every this many requests (each one is also dropped when
# its last request finishes with an empty window).
SWEEP_EVERY = 1000


class _OriginState:
    def __init__(self, concurrent: int) -> None:
        self.request_times: collections.deque[float] = collections.deque()
        self.slots = DeferredSemaphore(concurrent)
        self.active = 0  # requests admitted and not yet finished (waiting, queued or running)
        self.waiting = 0  # admitted requests sleeping or queued for a slot


class FederationRateLimiter:
    def __init__(self, reactor: Any, settings: FederationRateLimits) -> None:
        self.reactor = reactor
        self.settings = settings
        self.window_s = settings.window_size / 1000
        self._origins: dict[str, _OriginState] = {}
        self._requests = 0

    def _state(self, origin: str, now: float) -> _OriginState:
        self._requests += 1
        if self._requests % SWEEP_EVERY == 0:
            for name, idle in list(self._origins.items()):
                self._forget_if_idle(name, idle)
        state = self._origins.get(origin)
        if state is None:
            state = self._origins[origin] = _OriginState(self.settings.concurrent)
        while state.request_times and state.request_times[0] <= now - self.window_s:
            state.request_times.popleft()
        return state

    @asynccontextmanager
    async def ratelimit(self, origin: str) -> AsyncIterator[None]:
        """Hold a slot for one request from ``origin``; raises 429 when it is over the limit."""
        if not self.settings.enabled:
            yield
            return
        now = float(self.reactor.seconds())
        state = self._state(origin, now)
        if state.waiting > self.settings.reject_limit:
            self._forget_if_idle(origin, state)
            raise limit_exceeded(self._retry_after_ms())
        state.request_times.append(now)
        state.active += 1
        try:
            state.waiting += 1
            try:
                if len(state.request_times) > self.settings.sleep_limit:
                    await task.deferLater(self.reactor, self.settings.sleep_delay / 1000, lambda: None)
                await state.slots.acquire()
            finally:
                state.waiting -= 1
            try:
                yield
            finally:
                state.slots.release()
        finally:
            state.active -= 1
            self._forget_if_idle(origin, state)

    def _retry_after_ms(self) -> int:
        if self.settings.sleep_limit <= 0:
            return self.settings.window_size
        return max(1, self.settings.window_size // self.settings.sleep_limit)

    def _forget_if_idle(self, origin: str, state: _OriginState) -> None:
        """Drop an origin's state once nothing of it is in flight and its window is empty,
        so the table only holds origins that are active now."""
        now = float(self.reactor.seconds())
        while state.request_times and state.request_times[0] <= now - self.window_s:
            state.request_times.popleft()
        if state.active == 0 and not state.request_times:
            self._origins.pop(origin, None)

    def tracked_origins(self) -> int:
        return len(self._origins)
