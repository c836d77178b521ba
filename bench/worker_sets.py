"""What the worker benchmarks share (bench/workers_bench.py, bench/persisters_bench.py): the
20-senders-over-40-rooms send workload with one /sync long-poll reader per room, and CPU
meters over a set of processes and its PostgreSQL backends (from /proc)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from bench.process import cpu_ms, postgres_backend_pids
from tests.support.client import Client, q, register_user
from tests.support.sync import shared_room, sync, timeline_events
from tests.support.workers import ProcessSet

SENDERS = 20
ROOMS = 40
FILTER = {"room": {"timeline": {"limit": 1000}}}

Meter = Callable[[], dict[str, float]]


def meter_for(pids: dict[str, int], database: str | None) -> Meter:
    """CPU ms so far of each named process and (summed) of the database's backends."""

    def read() -> dict[str, float]:
        readings = {name: cpu_ms(pid) for name, pid in pids.items()}
        if database:
            total = 0.0
            for pid in postgres_backend_pids(database):
                try:
                    total += cpu_ms(pid)
                except OSError:
                    pass
            readings["postgres"] = total
        return readings

    return read


def set_pids(processes: ProcessSet) -> dict[str, int]:
    assert processes.main.process is not None
    pids = {"main": processes.main.process.pid}
    for name, worker in processes.workers.items():
        assert worker.process is not None
        pids[name] = worker.process.pid
    return pids


def sends(send_url: str, read_url: str, per_sender: int, meter: Meter) -> dict[str, object]:
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
            body = {"msgtype": "m.text", "body": f"{index}-{n}", "sent_ms": int(time.time() * 1000)}
            path = f"/_matrix/client/v3/rooms/{q(rooms[2 * index + n % 2])}/send/m.room.message/b{n}"
            assert client.put(path, body).status == 200

    with ThreadPoolExecutor(ROOMS + SENDERS) as pool:
        pollers = [pool.submit(poll, i) for i in range(ROOMS)]
        time.sleep(2)  # every poller parked
        before, started = meter(), time.monotonic()
        try:
            list(pool.map(send, range(SENDERS)))
            elapsed = time.monotonic() - started
            done.wait(120)
            after = meter()
        finally:
            done.set()
        for poller in pollers:
            poller.result()
    cpu = {name: (after[name] - before[name]) / total for name in after}
    return {"rate": total / elapsed, "latencies": latencies, "cpu": cpu, "total": total}


def no_meter() -> dict[str, float]:
    return {}
