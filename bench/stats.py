"""Small summaries of latency samples."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Linear-interpolated percentile (``fraction`` in 0..1) of a non-empty sample."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(seconds: Sequence[float], prefix: str = "") -> dict[str, float]:
    """p50/p99/max of latencies given in seconds, reported in milliseconds."""
    return {
        f"{prefix}p50_ms": percentile(seconds, 0.50) * 1000,
        f"{prefix}p99_ms": percentile(seconds, 0.99) * 1000,
        f"{prefix}max_ms": (max(seconds) * 1000) if seconds else math.nan,
    }
