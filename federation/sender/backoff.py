"""How long to leave a destination alone after a failed transaction (Synapse's rule).

The first failure waits ``destination_min_retry_interval``; each further one multiplies
the wait by ``destination_retry_multiplier`` and a jitter of 0.8-1.4, capped at
``destination_max_retry_interval``. Success, or any request from the destination
(it is evidently up), clears it.
"""

from __future__ import annotations

import random

from homeserver.config.schema import FederationSection
from storage.stores.federation_queue import RetryTimings


def after_failure(previous: RetryTimings | None, now_ms: int, config: FederationSection,
                  rng: random.Random | None = None) -> RetryTimings:
    """The timings after one more failed attempt at ``now_ms``."""
    minimum = int(config.destination_min_retry_interval)
    maximum = int(config.destination_max_retry_interval)
    if previous is None or previous.retry_interval <= 0:
        interval = minimum
        failure_ts = now_ms
    else:
        jitter = (rng or random).uniform(0.8, 1.4)
        interval = int(previous.retry_interval * config.destination_retry_multiplier * jitter)
        failure_ts = previous.failure_ts if previous.failure_ts is not None else now_ms
    return RetryTimings(now_ms, max(1, min(interval, maximum)), failure_ts)


def remaining_ms(timings: RetryTimings | None, now_ms: int) -> int:
    """How much longer to wait before the next attempt (0: go ahead)."""
    if timings is None or timings.retry_interval <= 0:
        return 0
    return max(0, timings.retry_last_ts + timings.retry_interval - now_ms)
