"""Pusher delivery: how long a message takes to reach a push gateway, and what a pusher
adds to a send.

A script, not a test: ``python bench/push_bench.py [messages] [engine...]`` (defaults: 200,
sqlite3 and psycopg2). It starts a real server per engine and a real gateway on loopback
(the test suite's), then, in a 1:1 room:

- ``send_no_pusher``: the receiver has no pusher; sequential sends, latency of each send;
- ``send_with_pusher``: the same with a pusher, plus, per message, send start to the
  gateway's receipt (``push_latency``);
- ``burst``: the messages sent back to back, then the time until the gateway has them all.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.client import Client, q  # noqa: E402
from tests.support.databases import drop_database  # noqa: E402
from tests.support.push_gateway import PushGateway, pusher_body  # noqa: E402
from tests.support.rooms import V3, create_room, join, new_user  # noqa: E402
from tests.support.server import start_test_server  # noqa: E402


def summary(label: str, seconds: list[float]) -> None:
    ms = sorted(s * 1000 for s in seconds)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(f"  {label:<18} n={len(ms):<4} p50={statistics.median(ms):7.2f} ms  p99={p99:7.2f} ms"
          f"  max={ms[-1]:7.2f} ms")


def send(client: Client, room_id: str, body: str) -> tuple[str, float]:
    started = time.perf_counter()
    response = client.put(f"{V3}/rooms/{q(room_id)}/send/m.room.message/{body}", {"msgtype": "m.text",
                                                                                 "body": body})
    assert response.status == 200, response
    return response.body["event_id"], started


def wait_for(gateway: PushGateway, event_id: str) -> float:
    gateway.wait_for(lambda gw: any(n["event_id"] == event_id for n in gw.delivered()), event_id)
    return time.perf_counter()


def run(engine: str, messages: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        server, database = start_test_server(Path(directory), engine, ip_range_whitelist=["127.0.0.0/8"],
                                             logging={"level": "WARNING", "file": f"{directory}/hs.log"})
        gateway = PushGateway().start()
        try:
            alice, bob = new_user(server.base_url), new_user(server.base_url)
            room_id = create_room(alice, preset="private_chat", invite=[bob.user_id])
            join(bob, room_id)
            print(f"{engine}:")
            plain = []
            for i in range(messages):
                _, started = send(alice, room_id, f"plain{i}")
                plain.append(time.perf_counter() - started)
            summary("send_no_pusher", plain)
            response = bob.post(f"{V3}/pushers/set", pusher_body(gateway.url, "bench-key"))
            assert response.status == 200, (response, server.output())
            sends, pushes = [], []
            for i in range(messages):
                event_id, started = send(alice, room_id, f"pushed{i}")
                sends.append(time.perf_counter() - started)
                pushes.append(wait_for(gateway, event_id) - started)
            summary("send_with_pusher", sends)
            summary("push_latency", pushes)
            started = time.perf_counter()
            last = ""
            for i in range(messages):
                last, _ = send(alice, room_id, f"burst{i}")
            wait_for(gateway, last)
            elapsed = time.perf_counter() - started
            print(f"  {'burst':<18} {messages} messages sent and pushed in {elapsed:.2f} s"
                  f" ({messages / elapsed:.0f}/s)")
        finally:
            gateway.stop()
            server.stop()
            drop_database(database)


def main() -> None:
    messages = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    for engine in sys.argv[2:] or ["sqlite3", "psycopg2"]:
        run(engine, messages)


if __name__ == "__main__":
    main()
