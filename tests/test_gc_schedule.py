"""The garbage-collection timer: a generation is collected once its count is past the threshold
and its interval has gone by, never sooner; the server runs with automatic collection off."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator

import pytest

from homeserver.gc_schedule import GcSchedule


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def manual_gc() -> Iterator[None]:
    """Automatic collection off for the test, as in the server, so only ``tick`` collects."""
    was_enabled = gc.isenabled()
    gc.disable()
    gc.collect()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def make_cycles(count: int) -> None:
    for _ in range(count):
        node: dict[str, object] = {}
        node["self"] = node


def test_young_generation_is_collected_once_due(manual_gc: None) -> None:
    clock = Clock()
    schedule = GcSchedule.configured([100, 10, 10], [1000, 10_000, 30_000], clock)
    make_cycles(500)
    assert gc.get_count()[0] > 100
    assert schedule.tick() is None  # the interval since start has not gone by
    clock.now += 1.0
    assert schedule.tick() == 0
    assert gc.get_count()[0] < 100
    make_cycles(500)
    clock.now += 0.5
    assert schedule.tick() is None  # due by count, not by time
    clock.now += 0.5
    assert schedule.tick() == 0


def test_older_generations_wait_for_their_count_and_interval(manual_gc: None) -> None:
    clock = Clock()
    schedule = GcSchedule.configured([10, 2, 2], [1000, 10_000, 30_000], clock)
    collected = []
    for _ in range(40):
        make_cycles(50)
        clock.now += 1.0
        collected.append(schedule.tick())
    # Generation 1 needs three collections of 0 and ten seconds; generation 2 thirty seconds.
    ones = [i for i, g in enumerate(collected) if g == 1]
    twos = [i for i, g in enumerate(collected) if g == 2]
    assert ones and all(b - a >= 10 for a, b in zip(ones, ones[1:], strict=False))
    assert twos and twos[0] >= 29
    assert 0 in collected


def test_default_thresholds_are_pythons() -> None:
    schedule = GcSchedule.configured(None, None)
    assert schedule.thresholds == gc.get_threshold()
    assert schedule.min_intervals_s == (1.0, 10.0, 30.0)


def test_cyclic_garbage_is_freed_by_the_timer(manual_gc: None) -> None:
    clock = Clock()
    schedule = GcSchedule.configured([100, 10, 10], None, clock)

    class Node:
        pass

    def cycle() -> None:
        node = Node()
        node.me = node  # type: ignore[attr-defined]

    for _ in range(1000):
        cycle()
    assert sum(isinstance(o, Node) for o in gc.get_objects()) == 1000
    clock.now += 1.0
    assert schedule.tick() == 0
    assert sum(isinstance(o, Node) for o in gc.get_objects()) == 0


def test_install_turns_automatic_collection_off() -> None:
    """In a process of its own: install freezes what exists and disables the collector."""
    script = (
        "import gc\n"
        "from twisted.internet import reactor\n"
        "from homeserver.gc_schedule import GcSchedule, install\n"
        "timer = install(reactor, GcSchedule.configured(None, None))\n"
        "print(gc.isenabled(), gc.get_freeze_count() > 0, timer.running)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["False", "True", "True"]
