"""Garbage collection on a schedule rather than on every few hundred allocations.

CPython collects a generation whenever its allocation count passes a threshold, and the whole
heap whenever enough objects have survived the younger collections. A fan-out keeps every
woken long-poll's request, response and Deferreds alive for a second or two, so those objects
survive into the oldest generation, and full collections came about once a second, each
scanning every object the process holds. On the timer the 1,500-member fan-out costs about a
quarter less server CPU per message (bench/RESULTS.md). As Synapse does (its ``gc_thresholds`` and
``gc_min_interval`` settings), automatic collection is turned off and a timer collects a
generation when its count has passed its threshold and its minimum interval has gone by.
What start-up built lives as long as the process, so it is frozen out of every collection.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs

#: How often the counts are looked at.
CHECK_INTERVAL_S = 0.1
#: Seconds between two collections of generation 0, 1 and 2, at least (Synapse's defaults).
DEFAULT_MIN_INTERVALS_S = (1.0, 10.0, 30.0)


@attrs.define
class GcSchedule:
    """Which generation to collect now, if any; the timer calls ``tick``."""

    thresholds: tuple[int, int, int]
    min_intervals_s: tuple[float, float, float]
    clock: Callable[[], float] = time.monotonic
    #: When each generation was last collected (collecting one collects the younger ones too).
    last: list[float] = attrs.field(factory=lambda: [0.0, 0.0, 0.0])

    @classmethod
    def configured(cls, thresholds: Sequence[int] | None, min_intervals_ms: Sequence[int] | None,
                   clock: Callable[[], float] = time.monotonic) -> GcSchedule:
        first, second, third = thresholds if thresholds else gc.get_threshold()
        intervals = tuple(ms / 1000 for ms in min_intervals_ms) if min_intervals_ms else DEFAULT_MIN_INTERVALS_S
        return cls((first, second, third), (intervals[0], intervals[1], intervals[2]), clock, [clock()] * 3)

    def tick(self) -> int | None:
        """Collect the oldest generation that is due; returns it (None: nothing was due)."""
        counts = gc.get_count()
        now = self.clock()
        for generation in (2, 1, 0):
            if counts[generation] > self.thresholds[generation] \
                    and now - self.last[generation] >= self.min_intervals_s[generation]:
                gc.collect(generation)
                for collected in range(generation + 1):
                    self.last[collected] = now
                return generation
        return None


def install(reactor: Any, schedule: GcSchedule) -> Any:
    """Freeze what exists now, turn automatic collection off, and start the timer (returned)."""
    from twisted.internet.task import LoopingCall

    gc.collect()
    gc.freeze()
    gc.disable()
    timer = LoopingCall(schedule.tick)
    timer.clock = reactor
    timer.start(CHECK_INTERVAL_S, now=False)
    return timer
