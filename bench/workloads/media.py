"""Media: download throughput of one 10 MB file, and the latency of 1 MB uploads."""

from __future__ import annotations

import os
import time

from bench.context import Context, cpu_metrics
from bench.stats import latency_summary

DOWNLOAD_SIZE = 10 * 1024 * 1024
UPLOAD_SIZE = 1024 * 1024
WARMUP = 3


async def media_download(ctx: Context) -> dict[str, float]:
    """One user downloads the same 10 MB upload ``media_downloads`` times, one after another."""
    (user,) = await ctx.users(1)
    uri = await user.upload(os.urandom(DOWNLOAD_SIZE), "application/octet-stream")
    for _ in range(WARMUP):
        await user.download(uri)
    meter = ctx.cpu_meter()
    latencies = []
    started = time.perf_counter()
    for _ in range(ctx.options.media_downloads):
        begun = time.perf_counter()
        size = await user.download(uri)
        latencies.append(time.perf_counter() - begun)
        assert size == DOWNLOAD_SIZE, size
    elapsed = time.perf_counter() - started
    count = len(latencies)
    return {"download_mib_per_s": count * DOWNLOAD_SIZE / 1024 / 1024 / elapsed, **latency_summary(latencies),
            **cpu_metrics(meter, count, "download"), "downloads": count}


async def media_upload(ctx: Context) -> dict[str, float]:
    """One user uploads ``media_uploads`` distinct 1 MB files, each waiting for the previous answer."""
    (user,) = await ctx.users(1)
    bodies = [os.urandom(UPLOAD_SIZE) for _ in range(WARMUP + ctx.options.media_uploads)]
    for body in bodies[:WARMUP]:
        await user.upload(body, "application/octet-stream")
    meter = ctx.cpu_meter()
    latencies = []
    started = time.perf_counter()
    for body in bodies[WARMUP:]:
        begun = time.perf_counter()
        await user.upload(body, "application/octet-stream")
        latencies.append(time.perf_counter() - begun)
    elapsed = time.perf_counter() - started
    count = len(latencies)
    return {"uploads_per_s": count / elapsed, **latency_summary(latencies), **cpu_metrics(meter, count, "upload"),
            "uploads": count}
