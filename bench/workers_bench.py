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
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.support.client import Client, q, register_user
from tests.support.databases import drop_database
from tests.support.server import start_test_server
from tests.support.sync import shared_room, sync, timeline_events
from tests.support.workers import start_process_set

SENDERS = 20
ROOMS = 40
FILTER = {"room": {"timeline": {"limit": 1000}}}


def run(send_url: str, read_url: str, per_sender: int) -> tuple[float, list[float]]:
    """(messages/s sent, delivery latencies in ms)."""
    senders = [register_user(send_url) for _ in range(SENDERS)]
    readers = [register_user(send_url) for _ in range(ROOMS)]
    rooms = [shared_room(senders[i // 2], readers[i]) for i in range(ROOMS)]
    total = SENDERS * per_sender
    latencies: list[float] = []
    seen = [0]
    lock = threading.Lock()
    done = threading.Event()

    def poll(index: int) -> None:
        client = Client(read_url, readers[index].access_token)
        token = sync(client, sync_filter=FILTER)["next_batch"]
        while not done.is_set():
            body = sync(client, token, timeout=2000, sync_filter=FILTER)
            token = body["next_batch"]
            now = time.time() * 1000
            for event in timeline_events(body, rooms[index]):
                if event["type"] == "m.room.message":
                    with lock:
                        latencies.append(now - float(event["content"]["sent_ms"]))
                        seen[0] += 1
                        if seen[0] >= total:
                            done.set()

    def send(index: int) -> None:
        client = senders[index]
        for n in range(per_sender):
            room_id = rooms[2 * index + n % 2]
            body = {"msgtype": "m.text", "body": f"{index}-{n}", "sent_ms": int(time.time() * 1000)}
            assert (
                client.put(
                    f"/_matrix/client/v3/rooms/{q(room_id)}/send/m.room.message/b{n}", body
                ).status
                == 200
            )

    with ThreadPoolExecutor(ROOMS + SENDERS) as pool:
        pollers = [pool.submit(poll, i) for i in range(ROOMS)]
        time.sleep(2)  # every poller parked
        started = time.monotonic()
        try:
            list(pool.map(send, range(SENDERS)))
            elapsed = time.monotonic() - started
            done.wait(120)
        finally:
            done.set()  # a failed send must not leave the pollers running
        for poller in pollers:
            poller.result()
    return total / elapsed, latencies


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
