"""Self-destruct and retention costs, on both engines (not part of the Synapse comparison:
Synapse does not expunge self-destructing messages, and its purge is not comparable).

- expunge lag: a message sent with org.matrix.self_destruct_after = now + 1 s, then /event
  polled every 10 ms until it reads as redacted; lag = that moment minus its due time.
- purge throughput: N messages in a room with max_lifetime 1 s, purged by a job running
  every second; events deleted per second of purge run time (from the admin status).

    .venv/bin/python -m bench.expiry_bench [--messages 2000] [--expunges 30]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.support.accounts import admin_register
from tests.support.client import Client, q
from tests.support.databases import ENGINES, drop_database
from tests.support.rooms import V3, create_room, new_user, put_state
from tests.support.server import start_test_server


def now_ms() -> float:
    return time.time() * 1000


def expunge_lags(user: Client, room_id: str, count: int) -> list[float]:
    lags = []
    for i in range(count):
        due = int(now_ms()) + 1000
        event_id = user.put(f"{V3}/rooms/{q(room_id)}/send/m.room.message/lag{i}",
                            {"msgtype": "m.text", "body": "x", "org.matrix.self_destruct_after": due}).body["event_id"]
        while "redacted_because" not in user.get(f"{V3}/rooms/{q(room_id)}/event/{q(event_id)}").body["unsigned"]:
            time.sleep(0.01)
        lags.append(now_ms() - due)
    return lags


def purge_rate(admin: Client, user: Client, messages: int) -> tuple[int, float]:
    room_id = create_room(user)
    put_state(user, room_id, "m.room.retention", {"max_lifetime": 1000})

    def send(i: int) -> None:
        user.put(f"{V3}/rooms/{q(room_id)}/send/m.room.message/p{i}", {"msgtype": "m.text", "body": f"m{i}"})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, range(messages)))
    while True:
        runs = admin.get("/_synapse/admin/v1/retention/status").body["runs"]
        deleted = sum(r["events_deleted"] for r in runs if r["status"] == "finished")
        if deleted >= messages - 1:
            busy_ms = sum(r["duration_ms"] for r in runs if r["status"] == "finished" and r["events_deleted"])
            return deleted, busy_ms
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--expunges", type=int, default=30)
    args = parser.parse_args()
    for engine in ENGINES:
        with tempfile.TemporaryDirectory() as directory:
            server, database = start_test_server(
                Path(directory), engine, logging={"level": "WARNING", "file": str(Path(directory) / "hs.log")},
                retention={"enabled": True, "allowed_lifetime_min": "1s", "purge_jobs": [{"interval": "1s"}]})
            try:
                user = new_user(server.base_url)
                registered = admin_register(server, "benchadmin", admin=True).body
                admin = Client(server.base_url, registered["access_token"], registered["user_id"])
                lags = sorted(expunge_lags(user, create_room(user), args.expunges))
                deleted, busy_ms = purge_rate(admin, user, args.messages)
                print(f"{engine}: expunge lag after due time over {len(lags)} messages: p50 "
                      f"{statistics.median(lags):.0f} ms, max {lags[-1]:.0f} ms (10 ms polling); "
                      f"purge: {deleted} events in {busy_ms} ms of purge runs = "
                      f"{deleted / max(busy_ms, 1) * 1000:.0f} events/s")
            finally:
                server.stop()
                drop_database(database)


if __name__ == "__main__":
    main()
