"""Federation out of one process against federation split off (docs/workers.md): CPU per message.

The same run twice, on PostgreSQL: a user sends messages into a room shared with a user on a
second (single-process, SQLite) Vignette, and we wait until that user has seen them all in
``/sync``. First the origin is one process; then it is main plus a federation sender, a
federation reader, a media and a background-jobs worker (tests/support/fed_workers.py).
Reported: each origin process's CPU time per message (from /proc/<pid>/stat) and the
messages/s until the peer saw everything, and the ratios of the split run to the single one.
On this shared 2-CPU machine the wall-clock figures mean little; main's CPU per message is
what splitting the sender off is for.

    .venv/bin/python -m bench.fed_workers_bench [--messages 200]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.process import cpu_ms
from tests.support.client import Client, q
from tests.support.databases import drop_database
from tests.support.fed_workers import start_split_server
from tests.support.federation import FederationNet
from tests.support.rooms import V3, create_room, new_user, send_message
from tests.support.server import RunningServer

FILTER = json.dumps({"room": {"timeline": {"limit": 1000}}})
WHITELIST: dict[str, Any] = {"ip_range_whitelist": ["127.0.0.1/32", "::1/128"]}


def seen_count(client: Client, room_id: str, since: str, wanted: set[str]) -> str:
    """Long-poll until every event of ``wanted`` was in the room's timeline; the last token."""
    while wanted:
        body = client.get(f"{V3}/sync", params={"since": since, "timeout": 30000, "filter": FILTER},
                          timeout=60).body
        since = body["next_batch"]
        timeline = body.get("rooms", {}).get("join", {}).get(room_id, {}).get("timeline", {})
        wanted -= {event["event_id"] for event in timeline.get("events", [])}
    return since


def run(origin_url: str, origin_name: str, peer: RunningServer, pids: dict[str, int],
        messages: int) -> dict[str, Any]:
    carol = new_user(peer.base_url)
    room_id = create_room(carol, preset="public_chat")
    alice = new_user(origin_url)
    joined = alice.post(f"{V3}/join/{q(room_id)}", {}, params={"server_name": peer.server_name})
    assert joined.status == 200, joined
    since = carol.get(f"{V3}/sync", params={"timeout": 0, "filter": FILTER}, timeout=60).body["next_batch"]
    before = {name: cpu_ms(pid) for name, pid in pids.items()}
    start = time.monotonic()
    sent = {send_message(alice, room_id, f"bench {i}") for i in range(messages)}
    seen_count(carol, room_id, since, sent)
    elapsed = time.monotonic() - start
    cpu = {name: (cpu_ms(pid) - before[name]) / messages for name, pid in pids.items()}
    print(f"  {origin_name}: {messages / elapsed:.1f} msg/s until seen; CPU ms/msg "
          + ", ".join(f"{name} {value:.2f}" for name, value in cpu.items()))
    return {"rate": messages / elapsed, "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fedworkers-bench-") as tmp:
        root = Path(tmp)
        net = FederationNet.create(root / "net")
        peer, peer_db = net.start_server(root / "peer", "sqlite3", **WHITELIST)
        try:
            single, single_db = net.start_server(root / "single", "psycopg2", localhost_name=True, **WHITELIST)
            try:
                assert single.process is not None
                one = run(single.base_url, "one process", peer, {"main": single.process.pid}, args.messages)
            finally:
                single.stop()
                drop_database(single_db)
            split = start_split_server(root / "split", net)
            try:
                pids = {"main": split.main.process.pid}  # type: ignore[union-attr]
                pids.update({name: w.process.pid for name, w in split.workers.items()})  # type: ignore[union-attr]
                parts = run(split.main.base_url, "split", peer, pids, args.messages)
            finally:
                split.stop()
                drop_database(split.database)
        finally:
            peer.stop()
            drop_database(peer_db)
            net.stop()
    total = sum(parts["cpu"].values())
    print(f"ratios split/one: main CPU per message {parts['cpu']['main'] / one['cpu']['main']:.2f}, "
          f"all processes' CPU per message {total / one['cpu']['main']:.2f}, "
          f"msg/s {parts['rate'] / one['rate']:.2f}")


if __name__ == "__main__":
    main()
