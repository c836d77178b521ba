"""Joining a big room over federation: Vignette against Synapse (issue 14's join benchmark).

A room of ``--members`` members is hosted on Synapse, and the same kind of room on Vignette. For
each host, a user on another server joins it: a Vignette user and a Synapse user (each server on
its own, so a Synapse joiner is a second Synapse and a Vignette joiner a second Vignette). We
time the ``POST /join`` and then the first ``/sync`` that holds the room, from the joiner's side.

    python -m bench.federated_join --members 1500 --workdir /tmp/fj

Servers run over HTTPS on loopback with the tests' CA and DNS (tests/support), on SQLite. A
script, not a test: it asserts nothing about the times.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.support.client import Client, q, register_user
from tests.support.federation import FederationNet
from tests.support.rooms import V3, create_room, new_user
from tests.support.server import RunningServer
from tests.support.synapse_server import SynapseServer

LOOPBACK = ["127.0.0.1/32", "::1/128"]
#: Synapse's per-room join limit (not among the test kit's limits): off, as every other limit.
SYNAPSE = {"rc_joins_per_room": {"per_second": 1_000_000, "burst_count": 1_000_000}}


def start_two_of_each(workdir: Path, net: FederationNet, started: list[Any],
                      labels: tuple[str, str]) -> tuple[list[SynapseServer], list[RunningServer]]:
    """Two Synapses and two Vignettes (SQLite) on the test network, named so that each can reach the
    others; each is appended to ``started`` as it comes up, for the caller to stop."""
    synapses = []
    for label in labels:
        synapses.append(SynapseServer.start(workdir / f"synapse-{label}", net.ca, **SYNAPSE))
        started.append(synapses[-1])
    vignettes = []
    for label in labels:
        server, _database = net.start_server(workdir / f"v{label}", "sqlite3", f"v{label}", localhost_name=True,
                                             ip_range_whitelist=LOOPBACK)
        started.append(server)
        vignettes.append(server)
    return synapses, vignettes


def fill_room(owner: Client, make_user: Callable[[], Client], members: int) -> str:
    room_id = create_room(owner, preset="public_chat")

    def one(_: int) -> None:
        user = make_user()
        response = user.post(f"{V3}/join/{q(room_id)}", {})
        assert response.status == 200, response

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(members - 1)))
    return room_id


def time_join(joiner: Client, room_id: str, via: str) -> dict[str, float]:
    start = time.perf_counter()
    response = joiner.post(f"{V3}/join/{q(room_id)}", {}, params={"server_name": via}, timeout=900)
    joined = time.perf_counter()
    assert response.status == 200, response
    since = None
    while True:
        params: dict[str, Any] = {"timeout": 5000}
        if since:
            params["since"] = since
        body = joiner.get(f"{V3}/sync", params=params, timeout=900).body
        if room_id in body.get("rooms", {}).get("join", {}):
            break
        since = body["next_batch"]
    synced = time.perf_counter()
    return {"join_s": round(joined - start, 3), "first_sync_s": round(synced - start, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1500)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fedjoin-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    net = FederationNet.create(workdir / "net")
    started: list[Any] = []
    results: dict[str, dict[str, float]] = {}
    try:
        (synapse_host, synapse_joiner), (vignette_host, vignette_joiner) = start_two_of_each(
            workdir, net, started, ("host", "joiner"))

        on_synapse = fill_room(register_user(synapse_host.base_url),
                               lambda: register_user(synapse_host.base_url), args.members)
        results["synapse room, vignette joins"] = time_join(new_user(vignette_joiner.base_url), on_synapse,
                                                            synapse_host.server_name)
        results["synapse room, synapse joins"] = time_join(register_user(synapse_joiner.base_url), on_synapse,
                                                           synapse_host.server_name)
        on_vignette = fill_room(new_user(vignette_host.base_url), lambda: new_user(vignette_host.base_url),
                                args.members)
        results["vignette room, synapse joins"] = time_join(register_user(synapse_joiner.base_url), on_vignette,
                                                            vignette_host.server_name)
        results["vignette room, vignette joins"] = time_join(new_user(vignette_joiner.base_url), on_vignette,
                                                             vignette_host.server_name)
    finally:
        for server in reversed(started):
            server.stop()
        net.stop()
    print(json.dumps({"members": args.members, "results": results}, indent=2))


if __name__ == "__main__":
    main()
