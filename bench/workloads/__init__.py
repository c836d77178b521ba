"""The workload list, in the order each server runs it (idle first, before caches and heaps grow)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs

from bench.context import Context, Options
from bench.workloads.delivery import fanout_large, fanout_members, send_to_sync_latency
from bench.workloads.idle import idle_longpolls
from bench.workloads.initial_sync import initial_sync
from bench.workloads.sends import concurrent_sends, sequential_sends

Metrics = dict[str, float]


@attrs.frozen
class Workload:
    name: str
    title: str
    run: Callable[[Context], Awaitable[Metrics]]
    enabled: Callable[[Options], bool] = lambda options: True
    skip_reason: str = ""
    timeout_factor: float = 1.0  # times --workload-timeout


def all_workloads() -> list[Workload]:
    return [
        Workload("idle_longpoll", "idle /sync long-polls held open", idle_longpolls),
        Workload("send_sequential", "sequential sends, one user", sequential_sends),
        Workload("send_concurrent", "concurrent senders in one room", concurrent_sends),
        Workload("send_to_sync", "send -> /sync delivery latency", send_to_sync_latency),
        Workload("initial_sync", "initial sync, user in N rooms", initial_sync),
        Workload("fanout", "fan-out, every member long-polling /sync", fanout_members),
        Workload("fanout_large", "fan-out to the large room (--large)", fanout_large,
                 enabled=lambda options: options.large, skip_reason="needs --large", timeout_factor=3.0),
    ]
