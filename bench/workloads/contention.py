"""Sends stay fast during a big fan-out: another room's senders, timed idle and while 1,500 members are woken.

Issue 16's target: the send p99 of another room's senders during a 1,500-member fan-out stays within 2x
its idle value. Both phases run with the large room's members connected (long-poll or stream), so the
only difference is the fan-out itself.
"""

from __future__ import annotations

import asyncio
import time

import attrs

from bench.client import MatrixClient
from bench.context import Context
from bench.pollers import Poller, StreamPoller, SyncPoller, check_stream_endpoint
from bench.stats import latency_summary
from bench.workloads.delivery import (
    SETTLE_S,
    DeliveryTracker,
    _measured,
    _send_and_track,
    _start_pollers,
    _stop,
)

IDLE_PHASE_S = 6.0


@attrs.define
class Bystanders:
    """Senders in their own room, each sending back to back until told to stop; keeps (start, latency)."""

    senders: list[MatrixClient]
    room_id: str
    samples: list[tuple[float, float]] = attrs.field(factory=list)
    _stop: asyncio.Event = attrs.field(factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = attrs.field(factory=list)

    def start(self) -> None:
        self._stop.clear()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run(sender, index)) for index, sender in enumerate(self.senders)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def _run(self, sender: MatrixClient, index: int) -> None:
        count = 0
        while not self._stop.is_set():
            started = time.perf_counter()
            await sender.send_message(self.room_id, f"bystander {index} {count}")
            self.samples.append((started, time.perf_counter() - started))
            count += 1

    def between(self, windows: list[tuple[float, float]]) -> list[float]:
        """Latencies of the sends that began inside one of ``windows``."""
        return [latency for started, latency in self.samples
                if any(low <= started <= high for low, high in windows)]


async def sends_during_fanout(ctx: Context, transport: type[Poller] = SyncPoller) -> dict[str, float]:
    count = ctx.options.members_large
    pool = await ctx.users(count + ctx.options.bystanders)
    members, senders = pool[:count], pool[count:]
    if transport is StreamPoller:
        await check_stream_endpoint(members[0])
    room_id = await ctx.shared_room(members, f"fanout{count}")
    bystanders = Bystanders(senders, await ctx.room_with(senders, name="bystanders"))
    tracker = DeliveryTracker(expected=len(members))
    pollers = await _start_pollers(ctx, members, tracker, transport)
    try:
        await asyncio.sleep(1.0 + count / 500)
        await _send_and_track(members[0], room_id, tracker, "warmup")
        await asyncio.sleep(SETTLE_S + count / 2000)
        bystanders.start()
        idle_from = time.perf_counter()
        await asyncio.sleep(IDLE_PHASE_S)
        idle_window = [(idle_from, time.perf_counter())]
        windows: list[tuple[float, float]] = []
        missed = 0
        for index in range(ctx.options.large_fanout_messages):
            began = time.perf_counter()
            missed += await _send_and_track(members[0], room_id, tracker, f"busy{index}")
            windows.append((began, time.perf_counter()))
            await asyncio.sleep(SETTLE_S + count / 2000)
        await bystanders.stop()
    finally:
        await _stop(pollers)
    idle = bystanders.between(idle_window)
    busy = bystanders.between(windows)
    idle_summary, busy_summary = latency_summary(idle, "idle_send_"), latency_summary(busy, "busy_send_")
    return {**idle_summary, **busy_summary,
            "busy_over_idle_p99": busy_summary["busy_send_p99_ms"] / idle_summary["idle_send_p99_ms"],
            **latency_summary(_measured(tracker), "fanout_"),
            "idle_sends": len(idle), "busy_sends": len(busy), "missed": missed}


async def stream_sends_during_fanout(ctx: Context) -> dict[str, float]:
    return await sends_during_fanout(ctx, StreamPoller)
