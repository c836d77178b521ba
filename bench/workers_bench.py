"""One process against main + one client-reader worker, on PostgreSQL and Redis (docs/workers.md).

20 concurrent senders over 40 rooms (two rooms each, alternating), and one reader per room
long-polling /sync on the reader process (or on the single process): messages/s sent, and
the send -> /sync delivery latency (p50/p95) measured on the reader's side. On this 2-CPU
machine the split is expected to be about flat or slower: every process competes for the
same two cores, and a worker adds a Redis hop to every wake-up.

    .venv/bin/python -m bench.workers_bench [--messages-per-sender 50]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from bench.worker_sets import no_meter, sends
from tests.support.databases import drop_database
from tests.support.server import start_test_server
from tests.support.workers import start_process_set


def run(send_url: str, read_url: str, per_sender: int) -> tuple[float, list[float]]:
    """(messages/s sent, delivery latencies in ms)."""
    result = sends(send_url, read_url, per_sender, no_meter)
    latencies, rate = result["latencies"], result["rate"]
    assert isinstance(latencies, list) and isinstance(rate, float)
    return rate, latencies


def report(label: str, rate: float, latencies: list[float]) -> None:
    cuts = statistics.quantiles(latencies, n=20)
    print(
        f"{label}: {rate:.0f} msg/s sent, delivered {len(latencies)}, "
        f"latency p50 {statistics.median(latencies):.0f} ms, p95 {cuts[18]:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages-per-sender", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server, database = start_test_server(Path(tmp) / "single", "psycopg2")
        try:
            report("one process", *run(server.base_url, server.base_url, args.messages_per_sender))
        finally:
            server.stop()
            drop_database(database)
        processes = start_process_set(Path(tmp) / "set", ["reader1"])
        try:
            reader = processes.workers["reader1"].base_url
            report(
                "main + 1 client reader",
                *run(processes.main.base_url, reader, args.messages_per_sender),
            )
        finally:
            processes.stop()
            drop_database(processes.database)


if __name__ == "__main__":
    main()
