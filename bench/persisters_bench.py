"""Event persisters (issue 21): sends and fan-out over a set of processes, on PostgreSQL and Redis.

1. Sends: 20 concurrent senders over 40 rooms (two rooms each, alternating), one reader per
   room long-polling /sync; one process, Synapse as one process, and main + 2 persisters +
   1 client reader (sends to main, which hands each room's events to its persister; /sync on
   the reader). Messages/s, send -> /sync latency, and CPU ms per message of every process
   and of the PostgreSQL backends, from /proc, during the sends only.
2. Fan-out: one message to N members (default 1,500) holding WebSockets spread over 2 client
   readers (main + 2 persisters + 2 readers): delivery latency and CPU per message per process.

On this 2-CPU machine every process shares the same two cores (with other sessions), so the
split is expected to be flat or slower; the per-process figures are what docs/scaling.md uses.

    .venv/bin/python -m bench.persisters_bench [--messages-per-sender 20] [--members 1500]
        [--only sends,fanout] [--no-synapse]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.client import MatrixClient
from bench.context import gather_limited
from bench.pollers import StreamPoller
from bench.targets import ensure_synapse, make_synapse
from bench.worker_sets import meter_for, sends, set_pids
from tests.support.databases import drop_database
from tests.support.server import start_test_server
from tests.support.workers import ProcessSet, start_persister_set

#: matrix-synapse[postgres] from PyPI, where bench/cli.py keeps it.
CACHE_DIR = Path.home() / ".cache" / "vignette-bench"


def report_sends(label: str, result: dict[str, object]) -> None:
    latencies = result["latencies"]
    assert isinstance(latencies, list) and isinstance(result["cpu"], dict)
    cuts = statistics.quantiles(latencies, n=20)
    cpu = ", ".join(f"{name} {value:.1f}" for name, value in result["cpu"].items())
    print(
        f"{label}: {result['rate']:.0f} msg/s sent, delivered {len(latencies)}/{result['total']}, "
        f"latency p50 {statistics.median(latencies):.0f} ms, p95 {cuts[18]:.0f} ms; "
        f"CPU ms per message: {cpu}",
        flush=True,
    )


async def fanout(processes: ProcessSet, readers: list[str], members: int, messages: int) -> None:
    main_url = processes.main.base_url
    reader_urls = [processes.workers[name].base_url for name in readers]
    meter = meter_for(set_pids(processes), processes.database["args"]["database"])
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        tag = f"f{int(time.time())}"
        clients = [MatrixClient(session, main_url) for _ in range(members)]
        await gather_limited([c.register(f"{tag}u{i}") for i, c in enumerate(clients)], limit=8)
        room_id = await clients[0].create_room()
        await gather_limited([c.join(room_id) for c in clients[1:]], limit=8)
        arrivals: dict[str, list[float]] = {}
        sent_at: dict[str, float] = {}

        def on_event(event: dict, arrived: float) -> None:
            marker = (event.get("content") or {}).get("bench_seq")
            if marker in sent_at:
                arrivals[marker].append(arrived - sent_at[marker])

        pollers = []
        for index, client in enumerate(clients):
            on_reader = MatrixClient(session, reader_urls[index % len(reader_urls)], client.access_token,
                                     client.user_id, client.device_id)
            pollers.append(StreamPoller(on_reader, None, on_event))
        await gather_limited([p.prime() for p in pollers], limit=16)
        for poller in pollers:
            poller.start()
        await asyncio.gather(*(p.connected.wait() for p in pollers))
        await asyncio.sleep(5)
        latencies: list[float] = []
        missed = 0
        before = meter()
        for index in range(messages + 1):  # the first one warms up
            marker = f"{tag}m{index}"
            arrivals[marker] = []
            if index == 1:
                before = meter()
            sent_at[marker] = time.perf_counter()
            await clients[0].send_message(room_id, "fan-out", bench_seq=marker)
            deadline = time.monotonic() + 120
            while len(arrivals[marker]) < members and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if index:
                missed += members - len(arrivals[marker])
                latencies += [lat * 1000 for lat in arrivals[marker]]
            await asyncio.sleep(2)
        after = meter()
        for poller in pollers:
            await poller.stop()
    cuts = statistics.quantiles(latencies, n=100)
    cpu = ", ".join(f"{name} {(after[name] - before[name]) / messages:.0f}" for name in after)
    print(
        f"fan-out to {members} WebSockets over {len(readers)} client readers, {messages} messages: "
        f"delivery p50 {statistics.median(latencies):.0f} ms, p99 {cuts[98]:.0f} ms, missed {missed}; "
        f"CPU ms per message: {cpu}",
        flush=True,
    )


def run_sends(tmp: Path, per_sender: int, with_synapse: bool) -> None:
    server, database = start_test_server(tmp / "single", "psycopg2")
    try:
        assert server.process is not None
        meter = meter_for({"vignette": server.process.pid}, database["args"]["database"])
        report_sends("one process", sends(server.base_url, server.base_url, per_sender, meter))
    finally:
        server.stop()
        drop_database(database)
    if with_synapse:
        synapse = make_synapse("postgres", tmp / "synapse", "WARNING", ensure_synapse(CACHE_DIR))
        synapse.start()
        try:
            meter = meter_for({"synapse": synapse.pid}, synapse.postgres_database)
            report_sends("Synapse, one process", sends(synapse.base_url, synapse.base_url, per_sender, meter))
        finally:
            synapse.stop()
    processes = start_persister_set(tmp / "set", ["persister1", "persister2"], ["reader1"])
    try:
        meter = meter_for(set_pids(processes), processes.database["args"]["database"])
        reader = processes.workers["reader1"].base_url
        report_sends("main + 2 persisters + 1 client reader",
                     sends(processes.main.base_url, reader, per_sender, meter))
    finally:
        processes.stop()
        drop_database(processes.database)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages-per-sender", type=int, default=20)
    parser.add_argument("--members", type=int, default=1500)
    parser.add_argument("--fanout-messages", type=int, default=3)
    parser.add_argument("--only", default="sends,fanout")
    parser.add_argument("--no-synapse", action="store_true")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        if "sends" in parts:
            run_sends(Path(tmp), args.messages_per_sender, not args.no_synapse)
        if "fanout" in parts:
            readers = ["reader1", "reader2"]
            processes = start_persister_set(Path(tmp) / "fan", ["persister1", "persister2"], readers)
            try:
                asyncio.run(fanout(processes, readers, args.members, args.fanout_messages))
            finally:
                processes.stop()
                drop_database(processes.database)


if __name__ == "__main__":
    main()
