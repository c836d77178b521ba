"""Simplified sliding sync (MSC4186): an initial request for a user in many rooms, Vignette
against Synapse (issue 20's benchmark).

    python -m bench.sliding_sync_bench --rooms 500 --requests 10 --workdir /tmp/ssb

Each server in turn (never both at once) on SQLite: one user creates ``--rooms`` rooms with a
message in each, then times ``--requests`` initial sliding sync requests (each on a fresh
``conn_id``, so none is incremental) for a list of the 20 most recent rooms with
``timeline_limit`` 1 and the room name as required state. Synapse is matrix-synapse from PyPI
(the test suite's cached venv). A script, not a test: it asserts nothing about the times.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.targets import Target, make_synapse, make_vignette
from tests.support.client import Client, q, random_localpart
from tests.support.synapse_tool import synapse_python

PATH = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"
V3 = "/_matrix/client/v3"


def register(base_url: str) -> Client:
    """The two-step /register with dummy auth, which both servers accept."""
    client = Client(base_url)
    body: dict[str, Any] = {"username": random_localpart("ss"), "password": "bench password 1"}
    first = client.post(f"{V3}/register", body)
    if first.status == 401:
        body["auth"] = {"type": "m.login.dummy", "session": first.body.get("session")}
        first = client.post(f"{V3}/register", body)
    assert first.status == 200, first
    client.access_token, client.user_id = first.body["access_token"], first.body["user_id"]
    client.device_id = first.body["device_id"]
    return client


def fill(client: Client, rooms: int) -> None:
    def one(i: int) -> None:
        created = client.post(f"{V3}/createRoom", {"name": f"room {i}", "preset": "private_chat"})
        assert created.status == 200, created
        room = created.body["room_id"]
        sent = client.put(f"{V3}/rooms/{q(room)}/send/m.room.message/t{i}", {"msgtype": "m.text", "body": f"m{i}"})
        assert sent.status == 200, sent

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(rooms)))


def body(conn_id: str) -> dict[str, Any]:
    return {"conn_id": conn_id, "lists": {"recent": {"ranges": [[0, 19]], "timeline_limit": 1,
                                                     "required_state": [["m.room.name", ""]]}}}


def measure(target: Target, rooms: int, requests: int) -> dict[str, Any]:
    target.start()
    try:
        client = register(target.base_url)
        started = time.perf_counter()
        fill(client, rooms)
        setup_s = time.perf_counter() - started
        warm = client.post(PATH, body("warm-up"), timeout=300)
        assert warm.status == 200 and len(warm.body["rooms"]) == 20, warm
        times = []
        for i in range(requests):
            started = time.perf_counter()
            response = client.post(PATH, body(f"c{i}"), timeout=300)
            times.append(time.perf_counter() - started)
            assert response.status == 200 and len(response.body["rooms"]) == 20, response
        ms = sorted(t * 1000 for t in times)
        return {"server": target.label, "rooms": rooms, "requests": requests, "setup_s": round(setup_s, 1),
                "p50_ms": round(statistics.median(ms), 1), "min_ms": round(ms[0], 1), "max_ms": round(ms[-1], 1)}
    finally:
        target.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=500)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ssb-"))
    results = []
    for kind in ("vignette", "synapse"):
        directory = workdir / kind
        target = make_vignette("sqlite", directory, "WARNING") if kind == "vignette" else \
            make_synapse("sqlite", directory, "WARNING", synapse_python())
        results.append(measure(target, args.rooms, args.requests))
        print(json.dumps(results[-1]), flush=True)
    vignette, synapse = results
    print(f"ratio vignette/synapse p50: {vignette['p50_ms'] / synapse['p50_ms']:.2f}")


if __name__ == "__main__":
    main()
