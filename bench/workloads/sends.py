"""Sending: one user sending back to back, and many users sending into one room at once."""

from __future__ import annotations

import asyncio
import time

from bench.client import MatrixClient
from bench.context import Context, cpu_metrics
from bench.stats import latency_summary

WARMUP_SENDS = 10


async def _timed_sends(client: MatrixClient, room_id: str, count: int, label: str) -> list[float]:
    latencies = []
    for index in range(count):
        started = time.perf_counter()
        await client.send_message(room_id, f"{label} {index}")
        latencies.append(time.perf_counter() - started)
    return latencies


async def sequential_sends(ctx: Context) -> dict[str, float]:
    """One user, one room, each send waits for the previous answer."""
    (sender,) = await ctx.users(1)
    room_id = await ctx.room_with([sender], name="sequential")
    await _timed_sends(sender, room_id, WARMUP_SENDS, "warmup")
    meter = ctx.cpu_meter()
    started = time.perf_counter()
    latencies = await _timed_sends(sender, room_id, ctx.options.sends, "sequential")
    elapsed = time.perf_counter() - started
    count = len(latencies)
    return {"events_per_s": count / elapsed, **latency_summary(latencies),
            **cpu_metrics(meter, count, "event"), "events": count}


async def concurrent_sends(ctx: Context) -> dict[str, float]:
    """``concurrent_senders`` users in one room, each sending its share back to back, all at once."""
    senders = await ctx.users(ctx.options.concurrent_senders)
    room_id = await ctx.room_with(senders, name="concurrent")
    per_sender = max(1, ctx.options.concurrent_sends // len(senders))
    await asyncio.gather(*(_timed_sends(s, room_id, 2, "warmup") for s in senders))
    meter = ctx.cpu_meter()
    started = time.perf_counter()
    results = await asyncio.gather(*(_timed_sends(s, room_id, per_sender, "concurrent") for s in senders))
    elapsed = time.perf_counter() - started
    latencies = [latency for per_client in results for latency in per_client]
    count = len(latencies)
    return {"events_per_s": count / elapsed, **latency_summary(latencies),
            **cpu_metrics(meter, count, "event"), "events": count}
