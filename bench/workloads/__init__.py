"""The workload list, in the order each server runs it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs

from bench.context import Context, Options
from bench.workloads.contention import sends_during_fanout, stream_sends_during_fanout
from bench.workloads.delivery import (
    call_invite_latency,
    fanout_large,
    fanout_members,
    send_to_sync_latency,
    stream_call_invite_latency,
    stream_fanout_large,
    stream_fanout_members,
)
from bench.workloads.idle import idle_longpolls, idle_streams
from bench.workloads.initial_sync import initial_sync
from bench.workloads.media import media_download, media_upload
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
    # Synapse has no WebSocket stream: our stream workloads are set against its long-poll numbers.
    synapse_baseline: str | None = None
    # Memory workloads start from a freshly started process, so earlier workloads' heaps don't skew them.
    restart_first: bool = False


def _large(options: Options) -> bool:
    return options.large


def all_workloads() -> list[Workload]:
    return [
        Workload("idle_longpoll", "idle /sync long-polls held open", idle_longpolls, restart_first=True),
        Workload("send_sequential", "sequential sends, one user", sequential_sends),
        Workload("send_concurrent", "concurrent senders in one room", concurrent_sends),
        Workload("send_to_sync", "send -> /sync delivery latency", send_to_sync_latency),
        Workload("call_invite_sync", "m.call.invite -> callee's /sync long-poll", call_invite_latency),
        Workload("ws_call_invite", "m.call.invite -> callee's WebSocket stream (vs Synapse /sync)",
                 stream_call_invite_latency, synapse_baseline="call_invite_sync"),
        Workload("initial_sync", "initial sync, user in N rooms", initial_sync),
        Workload("fanout", "fan-out, every member long-polling /sync", fanout_members),
        Workload("fanout_large", "fan-out to the large room", fanout_large,
                 enabled=_large, skip_reason="--no-large", timeout_factor=3.0),
        Workload("send_during_fanout", "another room's sends, idle and during the large fan-out", sends_during_fanout,
                 enabled=_large, skip_reason="--no-large", timeout_factor=3.0),
        Workload("ws_idle", "idle WebSocket streams (vs Synapse long-polls)", idle_streams,
                 synapse_baseline="idle_longpoll", restart_first=True),
        Workload("ws_fanout", "fan-out over WebSocket streams (vs Synapse long-polls)", stream_fanout_members,
                 synapse_baseline="fanout"),
        Workload("ws_fanout_large", "large fan-out over WebSocket streams (vs Synapse long-polls)",
                 stream_fanout_large, enabled=_large, skip_reason="--no-large", timeout_factor=3.0,
                 synapse_baseline="fanout_large"),
        Workload("ws_send_during_fanout", "another room's sends during the large WebSocket fan-out (vs Synapse "
                 "long-polls)", stream_sends_during_fanout, enabled=_large, skip_reason="--no-large",
                 timeout_factor=3.0, synapse_baseline="send_during_fanout"),
        Workload("media_download", "media: download one 10 MB file, repeatedly", media_download),
        Workload("media_upload", "media: upload 1 MB files, one at a time", media_upload),
    ]
