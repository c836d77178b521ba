"""Remote ``/keys/query`` for 100 users on another server: Vignette against Synapse (issue 15).

Each target server (a Vignette and a Synapse) holds ``--users`` users, each with one device whose
signed keys are uploaded. A user on a querying server (again one of each) asks
``POST /keys/query`` for all of them, ``--rounds`` times, and we take p50/p99 of the client-side
latency. The querying user shares no room with the targets, so neither server may answer from a
device-list cache: every round is a ``/user/keys/query`` over federation. All four pairings run.

    python -m bench.remote_keys_query --users 100 --rounds 50 --workdir /tmp/rkq

Servers run over HTTPS on loopback with the tests' CA and DNS (tests/support), on SQLite. A
script, not a test: it asserts only that every answer is complete.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.stats import latency_summary
from tests.support.client import Client, register_user
from tests.support.e2ee import setup_device
from tests.support.federation import FederationNet
from tests.support.rooms import new_user
from tests.support.synapse_server import SynapseServer

LOOPBACK = ["127.0.0.1/32", "::1/128"]


def populate(base_url: str, users: int, synapse: bool) -> list[str]:
    def one(_: int) -> str:
        client = register_user(base_url) if synapse else new_user(base_url)
        setup_device(client)
        assert client.user_id is not None
        return client.user_id

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(users)))


def time_queries(asker: Client, user_ids: list[str], rounds: int) -> dict[str, float]:
    body = {"device_keys": {u: [] for u in user_ids}, "timeout": 30000}
    samples: list[float] = []
    for _ in range(rounds):
        start = time.perf_counter()
        response = asker.post("/_matrix/client/v3/keys/query", body, timeout=120)
        samples.append(time.perf_counter() - start)
        assert response.status == 200, response
        assert response.body["failures"] == {}, response.body["failures"]
        assert sum(1 for u in user_ids if response.body["device_keys"].get(u)) == len(user_ids)
    return {k: round(v, 1) for k, v in latency_summary(samples).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="rkq-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    net = FederationNet.create(workdir / "net")
    started: list[Any] = []
    results: dict[str, dict[str, float]] = {}
    try:
        synapses = [SynapseServer.start(workdir / f"synapse-{label}", net.ca) for label in ("target", "asker")]
        started += synapses
        vignettes = []
        for label in ("vtarget", "vasker"):
            server, _database = net.start_server(workdir / label, "sqlite3", label, localhost_name=True,
                                                 ip_range_whitelist=LOOPBACK)
            started.append(server)
            vignettes.append(server)
        targets = {"synapse": populate(synapses[0].base_url, args.users, True),
                   "vignette": populate(vignettes[0].base_url, args.users, False)}
        askers = {"synapse": lambda: register_user(synapses[1].base_url),
                  "vignette": lambda: new_user(vignettes[1].base_url)}
        for asker_name, make_asker in askers.items():
            for target_name, user_ids in targets.items():
                asker = make_asker()
                time_queries(asker, user_ids, 2)  # warm-up: server keys fetched, connections open
                results[f"{asker_name} asks {target_name}"] = time_queries(asker, user_ids, args.rounds)
    finally:
        for server in reversed(started):
            server.stop()
        net.stop()
    print(json.dumps({"users": args.users, "rounds": args.rounds, "results": results}, indent=2))


if __name__ == "__main__":
    main()
