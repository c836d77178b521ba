"""Leaky-bucket rate limiting, keyed by user id or IP address.

Each key may take ``burst_count`` actions at once; the bucket drains at
``per_second``.  A denied action says how long until it would fit
(429 M_LIMIT_EXCEEDED with retry_after_ms).  ``enabled: false`` turns a limit off.

Usage from any area: ``hs.get(RateLimiters).message.ratelimit(requester.user_id)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from homeserver.config.schema import RateLimit
from homeserver.errors import limit_exceeded

# Drained buckets are dropped every this many checks, so the table never grows
# beyond the keys that were active recently.
PRUNE_EVERY = 1000


class Ratelimiter:
    def __init__(self, clock: Callable[[], float], limit: RateLimit) -> None:
        self.clock = clock
        self.enabled = limit.enabled
        self.rate = float(limit.per_second)
        self.burst = float(limit.burst_count)
        # key -> (level of the bucket, time that level was measured)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._checks = 0

    def _level(self, key: str, now: float) -> float:
        level, measured = self._buckets.get(key, (0.0, now))
        return max(0.0, level - (now - measured) * self.rate)

    def retry_after(self, key: str, update: bool = True, n: float = 1.0) -> float | None:
        """Seconds to wait if ``n`` more actions would overflow the bucket; else None.

        With ``update`` the actions are counted when allowed.
        """
        if not self.enabled:
            return None
        now = self.clock()
        self._maybe_prune(now)
        level = self._level(key, now)
        if level + n > self.burst:
            return (level + n - self.burst) / self.rate
        if update:
            self._buckets[key] = (level + n, now)
        return None

    def ratelimit(self, key: str, update: bool = True, n: float = 1.0) -> None:
        """Raise 429 M_LIMIT_EXCEEDED (with retry_after_ms) if the action does not fit."""
        wait = self.retry_after(key, update, n)
        if wait is not None:
            raise limit_exceeded(max(1, math.ceil(wait * 1000)))

    def record_action(self, key: str, n: float = 1.0) -> None:
        """Count actions even past the limit (e.g. a failure noted after the fact)."""
        if not self.enabled:
            return
        now = self.clock()
        self._buckets[key] = (self._level(key, now) + n, now)

    def _maybe_prune(self, now: float) -> None:
        self._checks += 1
        if self._checks % PRUNE_EVERY:
            return
        drained = [key for key in self._buckets if self._level(key, now) <= 0.0]
        for key in drained:
            del self._buckets[key]


class RateLimiters:
    """The server's configured limiters, built once."""

    def __init__(self, hs: Any) -> None:
        config = hs.config

        def clock() -> float:
            return float(hs.reactor.seconds())

        self.message = Ratelimiter(clock, config.rc_message)
        self.registration = Ratelimiter(clock, config.rc_registration)
        self.login_address = Ratelimiter(clock, config.rc_login.address)
        self.login_account = Ratelimiter(clock, config.rc_login.account)
        self.login_failed_attempts = Ratelimiter(clock, config.rc_login.failed_attempts)
