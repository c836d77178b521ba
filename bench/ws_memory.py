"""Where an idle WebSocket's server memory goes: tracemalloc in the server, N idle streams from here.

    python -m bench.ws_memory --streams 2000           # SQLite; top allocation sites per stream

The server runs under ``bench.traced_server`` (tracemalloc on, a snapshot on SIGUSR1). We take one
snapshot with every user primed but no stream open, open ``--streams`` streams, let them settle, take
another, and print the allocation sites that grew, per stream, grouped by ``--group`` (file or line).
tracemalloc sees Python allocations only (not the kernel's socket buffers, nor C libraries' own heaps),
so its per-stream total is a floor under the RSS growth, which is printed beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from bench.client import new_session
from bench.context import Context, Options, gather_limited
from bench.pollers import StreamPoller
from bench.process import rss_kib, wait_until
from bench.targets import make_vignette

SETTLE_S = 3.0


def _ignore(event: object, arrived: float) -> None:
    del event, arrived


def snapshot(pid: int, out: Path, label: str) -> tracemalloc.Snapshot:
    path = out.with_name(f"{out.name}.{label}")
    os.kill(pid, signal.SIGUSR1)
    if not wait_until(path.exists, 300, 0.2):
        raise RuntimeError(f"no snapshot at {path}")
    return tracemalloc.Snapshot.load(str(path))


async def measure(args: argparse.Namespace, target_pid: int, base_url: str, out: Path) -> None:
    async with new_session() as session:
        ctx = Context(_Shim(target_pid, base_url), session, Options())  # type: ignore[arg-type]
        users = await ctx.users(args.streams)
        pollers = [StreamPoller(user, None, _ignore, timeout_ms=120_000) for user in users]
        await gather_limited([poller.prime() for poller in pollers])
        await asyncio.sleep(SETTLE_S)
        rss_before = rss_kib(target_pid)
        before = await asyncio.to_thread(snapshot, target_pid, out, "before")
        for poller in pollers:
            poller.start()
        await asyncio.gather(*(poller.connected.wait() for poller in pollers))
        await asyncio.sleep(SETTLE_S + args.streams / 1000)
        rss_after = rss_kib(target_pid)
        after = await asyncio.to_thread(snapshot, target_pid, out, "after")
        n = len(pollers)
        stats = after.compare_to(before, args.group)
        traced = sum(stat.size_diff for stat in stats)
        print(f"streams {n}: RSS +{(rss_after - rss_before) / n:.2f} KiB per stream, "
              f"tracemalloc +{traced / n / 1024:.2f} KiB per stream (Python objects only)")
        for stat in stats[: args.top]:
            if stat.size_diff <= 0:
                continue
            frame = stat.traceback[0]
            print(f"{stat.size_diff / n:9.0f} B/stream {stat.count_diff / n:6.1f} blocks/stream  "
                  f"{frame.filename}:{frame.lineno if args.group == 'lineno' else ''}")
        await asyncio.gather(*(poller.stop() for poller in pollers))


class _Shim:
    """What Context reads from a target."""

    def __init__(self, pid: int, base_url: str) -> None:
        self.pid = pid
        self.base_url = base_url
        self.postgres_database = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--group", choices=["filename", "lineno", "traceback"], default="lineno")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    directory = Path(tempfile.mkdtemp(prefix="ws-memory-"))
    target = make_vignette(args.engine, directory, "WARNING")
    out = directory / "tracemalloc"
    target.command = [sys.executable, "-m", "bench.traced_server", *target.command[3:]]
    target.env["TRACEMALLOC_OUT"] = str(out)
    target.start()
    started = time.perf_counter()
    try:
        asyncio.run(measure(args, target.pid, target.base_url, out))
    finally:
        target.stop()
    print(f"({time.perf_counter() - started:.0f} s; files in {directory})")


if __name__ == "__main__":
    main()
