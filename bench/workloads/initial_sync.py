"""Initial sync: a user in many rooms asks /sync with no token."""

from __future__ import annotations

import json
import time

from bench.client import MatrixClient
from bench.context import Context, cpu_metrics, gather_limited
from bench.stats import percentile

REPEATS = 5


async def _make_room(ctx: Context, owner: MatrixClient, index: int) -> None:
    room_id = await ctx.room_with([owner], name=f"initial sync {index}", topic="benchmark room")
    await owner.send_message(room_id, f"hello {index}")


async def initial_sync(ctx: Context) -> dict[str, float]:
    """Full initial sync for a user in ``rooms`` rooms (each: creation state and one message), no filter."""
    owner = ctx.new_client()
    await owner.register(f"bench{ctx.run_tag}initial")
    # One at a time: two createRoom calls by one user in the same millisecond can yield the same v12
    # room ID (its create event has the same content and timestamp), which some servers reject.
    await gather_limited([_make_room(ctx, owner, index) for index in range(ctx.options.rooms)], limit=1)
    timings = []
    size = 0
    rooms_seen = 0
    meter = None
    for repeat in range(REPEATS):
        if repeat == 1:
            meter = ctx.cpu_meter()  # CPU of the warm syncs: steadier than wall time on a shared box
        started = time.perf_counter()
        # A distinct timeout per repeat: Synapse caches /sync answers by request for two minutes,
        # and a cached answer would not measure building one. (No token: the timeout is not waited.)
        body = await owner.sync(timeout_ms=repeat)
        timings.append(time.perf_counter() - started)
        size = len(json.dumps(body))
        rooms_seen = len((body.get("rooms") or {}).get("join") or {})
    if rooms_seen != ctx.options.rooms:
        raise RuntimeError(f"initial sync listed {rooms_seen} joined rooms, expected {ctx.options.rooms}")
    return {"first_ms": timings[0] * 1000, "p50_ms": percentile(timings[1:], 0.5) * 1000,
            **(cpu_metrics(meter, REPEATS - 1, "sync") if meter is not None else {}),
            "response_kib": size / 1024, "rooms": rooms_seen}
