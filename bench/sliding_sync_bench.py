"""Simplified sliding sync (MSC4186): an initial request for a user in many rooms, Vignette
against Synapse (issue 20's benchmark).

    python -m bench.sliding_sync_bench --rooms 500 --requests 30 --rounds 3 --workdir /tmp/ssb

Both servers run on SQLite, each with one user who creates ``--rooms`` rooms with a message in
each (one server filled at a time). Then the timed requests alternate between the two servers, one
at a time, so load from the rest of the machine falls on both alike: each is an initial sliding
sync request (a fresh ``conn_id``, so none is incremental) for a list of the 20 most recent rooms
with ``timeline_limit`` 1 and the room name as required state. Per server the script reports the
wall-clock p50 and the server's own CPU time per request (from /proc/<pid>/stat over the round),
and the ratios Vignette / Synapse, per round of ``--requests`` requests each. Synapse is
matrix-synapse from PyPI (the test suite's cached venv). A script, not a test: it asserts nothing
about the times. ``--profile DIR`` records the Vignette server with py-spy during the rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.process import cpu_ms
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


def warm(target: Target, rooms: int, warmups: int) -> Client:
    """Start, fill and warm one server (``warmups`` untimed requests, so both servers' caches hold
    what a client polling them would have loaded); the client is the user in all the rooms."""
    target.start()
    client = register(target.base_url)
    fill(client, rooms)
    for i in range(warmups):
        first = client.post(PATH, body(f"warm-up-{i}"), timeout=300)
        assert first.status == 200 and len(first.body["rooms"]) == 20, first
    return client


def timed(client: Client, conn_id: str) -> float:
    started = time.perf_counter()
    response = client.post(PATH, body(conn_id), timeout=300)
    elapsed = time.perf_counter() - started
    assert response.status == 200 and len(response.body["rooms"]) == 20, response
    return elapsed * 1000


def round_of(targets: list[tuple[Target, Client]], requests: int, round_no: int) -> dict[str, Any]:
    walls: dict[str, list[float]] = {t.kind: [] for t, _ in targets}
    cpu_start = {t.kind: cpu_ms(t.pid) for t, _ in targets}
    for i in range(requests):
        for target, client in targets:
            walls[target.kind].append(timed(client, f"r{round_no}-{i}"))
    result: dict[str, Any] = {"round": round_no, "requests": requests}
    for target, _ in targets:
        result[target.kind] = {"p50_ms": round(statistics.median(walls[target.kind]), 1),
                               "min_ms": round(min(walls[target.kind]), 1),
                               "cpu_ms_per_request": round((cpu_ms(target.pid) - cpu_start[target.kind]) / requests, 1)}
    if len(targets) == 2:
        v, s = result["vignette"], result["synapse"]
        result["ratio_p50"] = round(v["p50_ms"] / s["p50_ms"], 2)
        result["ratio_cpu"] = round(v["cpu_ms_per_request"] / s["cpu_ms_per_request"], 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=500)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmups", type=int, default=10)
    parser.add_argument("--only", choices=("vignette", "synapse"), default=None)
    parser.add_argument("--profile", type=Path, default=None, help="py-spy flame graph of Vignette into this dir")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ssb-"))
    kinds = [args.only] if args.only else ["vignette", "synapse"]
    targets: list[tuple[Target, Client]] = []
    profiler = None
    try:
        for kind in kinds:
            directory = workdir / kind
            target = make_vignette("sqlite", directory, "WARNING") if kind == "vignette" else \
                make_synapse("sqlite", directory, "WARNING", synapse_python())
            targets.append((target, warm(target, args.rooms, max(1, args.warmups))))
        if args.profile is not None and "vignette" in kinds:
            args.profile.mkdir(parents=True, exist_ok=True)
            vignette = next(t for t, _ in targets if t.kind == "vignette")
            profiler = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid",
                                         str(vignette.pid), "--format", "speedscope", "--output",
                                         str(args.profile / "vignette.speedscope.json")])
            time.sleep(1)
        for round_no in range(1, args.rounds + 1):
            print(json.dumps(round_of(targets, args.requests, round_no)), flush=True)
    finally:
        if profiler is not None:
            profiler.send_signal(2)
            profiler.wait(60)
        for target, _ in targets:
            target.stop()


if __name__ == "__main__":
    main()
