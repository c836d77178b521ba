"""Sync delivery benchmark: how fast a sent message reaches a waiting client, and what idle clients cost.

    python bench/sync_latency.py                       # sqlite, Vignette and Synapse (from PyPI)
    python bench/sync_latency.py --engines sqlite,postgres --messages 200 --idle 300
    python bench/sync_latency.py --servers vignette    # skip Synapse

For each engine and server, in turn (never two servers at once):
- send -> /sync: a receiver long-polls /sync; a sender sends one message at a time and waits until
  it arrives. Latency = from the start of the send request to the /sync answer that carries it.
- send -> WebSocket (Vignette only): the same with the receiver on the WebSocket stream,
  acknowledging every frame.
- idle long-polls / idle WebSockets: ``--idle`` users each park one /sync (120 s) or hold one
  stream open; server RSS before and after, divided by the number of connections.
Then one table, with Vignette/Synapse ratios where both ran. A script, not a test: it asserts
nothing about timing. Builds on the bench harness (bench/targets.py, bench/client.py,
bench/pollers.py): same configs, same Synapse virtualenv.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.client import MatrixClient, new_session  # noqa: E402
from bench.pollers import Poller, StreamPoller, SyncPoller  # noqa: E402
from bench.process import rss_kib  # noqa: E402
from bench.stats import latency_summary  # noqa: E402
from bench.targets import Target, ensure_synapse, make_synapse, make_vignette  # noqa: E402

SYNC_FILTER = '{"room":{"timeline":{"limit":20},"state":{"lazy_load_members":true}},"presence":{"types":[]}}'
DELIVERY_TIMEOUT_S = 30


async def register_many(session: Any, base_url: str, prefix: str, count: int) -> list[MatrixClient]:
    clients = []
    for start in range(0, count, 20):
        batch = [MatrixClient(session, base_url) for _ in range(min(20, count - start))]
        await asyncio.gather(*(c.register(f"{prefix}{start + i}x{int(time.time())}")
                               for i, c in enumerate(batch)))
        clients.extend(batch)
    return clients


async def delivery_latency(sender: MatrixClient, receiver: MatrixClient, room_id: str,
                           messages: int, poller_class: type[Poller]) -> dict[str, float]:
    """Send one message at a time; time each until the receiver's transport hands it over."""
    arrivals: dict[str, float] = {}
    arrived = asyncio.Event()

    def on_event(event: dict[str, Any], when: float) -> None:
        arrivals[event["event_id"]] = when
        arrived.set()

    poller = poller_class(receiver, SYNC_FILTER, on_event, timeout_ms=60_000)
    await poller.prime()
    poller.start()
    await poller.connected.wait()
    await asyncio.sleep(0.2)  # let the first long-poll or stream frame park
    samples = []
    try:
        for n in range(messages):
            started = time.perf_counter()
            event_id = await sender.send_message(room_id, f"latency {n}")
            deadline = started + DELIVERY_TIMEOUT_S
            while event_id not in arrivals and time.perf_counter() < deadline:
                arrived.clear()
                try:
                    await asyncio.wait_for(arrived.wait(), max(0.0, deadline - time.perf_counter()))
                except TimeoutError:
                    break
            if event_id in arrivals:
                samples.append(arrivals[event_id] - started)
    finally:
        await poller.stop()
    return {**latency_summary(samples), "delivered": len(samples), "sent": messages}


async def idle_cost(target: Target, clients: list[MatrixClient], poller_class: type[Poller]) -> dict[str, float]:
    """Server RSS per parked connection (each client parks one long-poll or holds one stream)."""
    pollers = [poller_class(c, SYNC_FILTER, lambda e, t: None, timeout_ms=120_000) for c in clients]
    for start in range(0, len(pollers), 50):
        await asyncio.gather(*(p.prime() for p in pollers[start:start + 50]))
    await asyncio.sleep(1.0)
    before = rss_kib(target.pid)
    for poller in pollers:
        poller.start()
    await asyncio.gather(*(p.connected.wait() for p in pollers))
    await asyncio.sleep(3.0)  # let every request reach the server and park
    after = rss_kib(target.pid)
    errors = sum(p.errors for p in pollers)
    for poller in pollers:
        await poller.stop()
    return {"connections": len(pollers), "rss_before_kib": before, "rss_after_kib": after,
            "kib_per_connection": (after - before) / max(1, len(pollers)), "errors": errors}


async def run_target(target: Target, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    async with new_session(connections=args.idle + 50) as session:
        sender, receiver = await register_many(session, target.base_url, "lat", 2)
        room_id = await sender.create_room()
        await receiver.join(room_id)
        results["send_to_sync"] = await delivery_latency(sender, receiver, room_id, args.messages, SyncPoller)
        if target.kind == "vignette":
            results["send_to_ws"] = await delivery_latency(sender, receiver, room_id, args.messages,
                                                           StreamPoller)
        idlers = await register_many(session, target.base_url, "idle", args.idle)
        room = await idlers[0].create_room()
        for start in range(0, len(idlers), 20):
            await asyncio.gather(*(c.join(room) for c in idlers[start + (start == 0):start + 20]))
        target.restart_process()  # measure connections, not heap left by setup
        results["idle_longpoll"] = await idle_cost(target, idlers, SyncPoller)
        if target.kind == "vignette":
            target.restart_process()
            results["idle_ws"] = await idle_cost(target, idlers, StreamPoller)
    return results


def print_table(all_results: dict[tuple[str, str], dict[str, dict[str, float]]]) -> None:
    rows = [("send_to_sync", "p50_ms"), ("send_to_sync", "p99_ms"), ("send_to_ws", "p50_ms"),
            ("send_to_ws", "p99_ms"), ("idle_longpoll", "kib_per_connection"),
            ("idle_ws", "kib_per_connection")]
    engines = sorted({engine for engine, _ in all_results})
    print()
    print(f"{'metric':40} " + " ".join(f"{e + '/' + s:>18}" for e in engines for s in ("vignette", "synapse"))
          + "   ratio V/S per engine")
    for workload, metric in rows:
        cells, ratios = [], []
        for engine in engines:
            values = [all_results.get((engine, server), {}).get(workload, {}).get(metric)
                      for server in ("vignette", "synapse")]
            cells += [f"{v:18.1f}" if isinstance(v, (int, float)) else f"{'n/a':>18}" for v in values]
            if all(isinstance(v, (int, float)) and v for v in values):
                ratios.append(f"{values[0] / values[1]:.2f}")
            else:
                ratios.append("-")
        print(f"{workload + ' ' + metric:40} " + " ".join(cells) + "   " + " ".join(ratios))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", default="sqlite", help="comma list of sqlite,postgres")
    parser.add_argument("--servers", default="vignette,synapse", help="comma list of vignette,synapse")
    parser.add_argument("--messages", type=int, default=100, help="messages per latency run")
    parser.add_argument("--idle", type=int, default=200, help="idle connections to hold")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "vignette-bench")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args()
    all_results: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
    workdir = Path(tempfile.mkdtemp(prefix="sync-bench-"))
    for engine in args.engines.split(","):
        for server in args.servers.split(","):
            directory = workdir / f"{server}-{engine}"
            if server == "vignette":
                target = make_vignette(engine, directory, args.log_level)
            else:
                target = make_synapse(engine, directory, args.log_level, ensure_synapse(args.cache_dir))
            print(f"== {server}/{engine}", flush=True)
            try:
                target.start()
                results = asyncio.run(run_target(target, args))
            except Exception as exc:  # report and go on to the next server
                print(f"   failed: {exc}", flush=True)
                continue
            finally:
                target.stop()
            for name, values in results.items():
                print(f"   {name}: " + ", ".join(f"{k}={v:.1f}" for k, v in values.items()), flush=True)
            all_results[(engine, server)] = results
    print_table(all_results)
    print(f"\n(server logs and configs in {workdir})")


if __name__ == "__main__":
    main()
