"""Idle long-polls: what holding many quiet /sync connections open costs the server."""

from __future__ import annotations

import asyncio
import time

from bench.context import Context, gather_limited
from bench.pollers import Poller, StreamPoller, SyncPoller, check_stream_endpoint

IDLE_TIMEOUT_MS = 120_000  # longer than the hold, so no poll returns while we measure
GC_SETTLE_S = 1.0


def _ignore(event: object, arrived: float) -> None:
    del event, arrived


async def idle_longpolls(ctx: Context) -> dict[str, float]:
    return await idle_connections(ctx, SyncPoller, ctx.options.idle)


async def idle_streams(ctx: Context) -> dict[str, float]:
    return await idle_connections(ctx, StreamPoller, ctx.options.idle_streams)


async def idle_connections(ctx: Context, transport: type[Poller], count: int) -> dict[str, float]:
    """RSS before and after ``count`` users each hold one quiet connection; CPU the server burns meanwhile."""
    users = await ctx.users(count)
    if transport is StreamPoller:
        await check_stream_endpoint(users[0])
    sync_filter = await ctx.sync_filter()
    pollers = [transport(user, sync_filter, _ignore, timeout_ms=IDLE_TIMEOUT_MS) for user in users]
    await gather_limited([poller.prime() for poller in pollers])
    await asyncio.sleep(GC_SETTLE_S)
    rss_before = ctx.rss_kib()
    for poller in pollers:
        poller.start()
    try:
        await asyncio.gather(*(poller.connected.wait() for poller in pollers))
        await asyncio.sleep(GC_SETTLE_S + len(pollers) / 1000)  # let every request arrive and park
        rss_after = ctx.rss_kib()
        meter, started = ctx.cpu_meter(), time.perf_counter()
        await asyncio.sleep(ctx.options.idle_hold_s)
        cpu_rate = meter.server_ms() / (time.perf_counter() - started)
        rss_held = ctx.rss_kib()
        returned = sum(poller.polls + poller.errors for poller in pollers)
        errors = sum(poller.errors for poller in pollers)
    finally:
        await asyncio.gather(*(poller.stop() for poller in pollers))
    peak = max(rss_after, rss_held)
    return {"rss_kib_per_conn": (peak - rss_before) / len(pollers), "rss_before_kib": rss_before,
            "rss_held_kib": peak, "idle_cpu_ms_per_s": cpu_rate, "connections": len(pollers),
            "returned_early": returned, "errors": errors}
