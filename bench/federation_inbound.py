"""Inbound federation throughput: PDUs per second accepted through ``PUT /send`` in transactions of
50 PDUs, from the tests' scripted peer (its own key, over HTTPS), against Vignette and Synapse on the
same machine in the same run.

    python -m bench.federation_inbound                  # Vignette (SQLite) and Synapse (SQLite)
    python -m bench.federation_inbound --pdus 2000 --servers vignette --engine psycopg2

One transaction in flight at a time, as a sending server does; every PDU is a message on the chain
before it, so nothing needs fetching. The clock runs from the first request until the last PDU is in
the room's timeline (/messages): Vignette answers /send after persisting, Synapse after staging. A script, not a test: nothing asserts a time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.support.client import register_user
from tests.support.databases import drop_database
from tests.support.fed_rooms import PeerRoom, peer_user
from tests.support.federation import FederationNet, ScriptedPeer
from tests.support.rooms import messages
from tests.support.server import free_port
from tests.support.synapse_server import SynapseServer

PER_TRANSACTION = 50


class _SynapseTarget:
    """What PeerRoom needs of a server (its name and federation port), for Synapse."""

    def __init__(self, synapse: SynapseServer) -> None:
        self.server_name = synapse.server_name
        self.config = {"listeners": [{}, {"port": synapse.federation_port}]}


def serve_state(room: PeerRoom, events: list[Any]) -> None:
    """Answer /state_ids and /state for the messages, as a real sending server would.

    Synapse takes staged PDUs by receive time, and the PDUs of one transaction share a millisecond,
    so it may handle them out of order and then ask the sender for the state before one. The state
    does not change after the peer's join: it is the room's state, fetched once in full."""
    state_pdus = [room.fetch(event_id).pdu for event_id in room.state.values()]
    room.state_before.update({event.event_id: dict(room.state) for event in events})

    def full_state(_handler: Any) -> tuple[int, Any]:
        return 200, {"pdus": state_pdus, "auth_chain": state_pdus}

    room.peer.http.routes[("GET", f"/_matrix/federation/v1/state/{quote(room.room_id, safe='')}")] = full_state


def measure(peer: ScriptedPeer, target: Any, base_url: str, pdus: int) -> dict[str, float]:
    owner = register_user(base_url)
    room = PeerRoom.create(peer, target, owner)
    sender = peer_user(peer, "bench")
    join = room.join(sender)
    assert room.send([join]) == {join.event_id: {}}, "the peer's join was not accepted"
    events = [room.build(sender, "m.room.message", {"msgtype": "m.text", "body": f"m{i}"}) for i in range(pdus)]
    serve_state(room, events)
    batches = [events[i:i + PER_TRANSACTION] for i in range(0, len(events), PER_TRANSACTION)]
    start = time.perf_counter()
    for batch in batches:
        results = room.send(batch)
        errors = {k: v for k, v in results.items() if v}
        assert not errors, f"PDUs refused: {list(errors.items())[:3]}"
    answered = time.perf_counter() - start
    # Synapse answers once the PDUs are staged and persists them afterwards: the clock stops
    # when the last one is in the room's timeline.
    deadline = time.monotonic() + 600 + 2 * pdus  # Synapse stages, then persists ~2-10 PDUs/s here
    while messages(owner, room.room_id, dir="b", limit="1")["chunk"][0]["event_id"] != events[-1].event_id:
        assert time.monotonic() < deadline, "the last PDU never reached the timeline"
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    return {"pdus": pdus, "seconds": elapsed, "answered_s": answered, "pdus_per_s": pdus / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pdus", type=int, default=1000)
    parser.add_argument("--servers", default="vignette,synapse")
    parser.add_argument("--engine", default="sqlite3", choices=("sqlite3", "psycopg2"))
    parser.add_argument("--workdir", help="keep configs and logs here (default: a temporary directory)")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="fedbench-") as scratch:
        tmp = args.workdir or scratch
        net = FederationNet.create(Path(tmp) / "net")
        try:
            for name in args.servers.split(","):
                directory = Path(tmp) / name
                if name == "vignette":
                    server, database = net.start_server(directory, args.engine)
                    peer = ScriptedPeer(net)
                    try:
                        results[name] = measure(peer, server, server.base_url, args.pdus)
                    finally:
                        peer.stop()
                        server.stop()
                        drop_database(database)
                else:
                    synapse = SynapseServer.start(directory, net.ca)
                    port = free_port()  # Synapse resolves localhost:<port> names through /etc/hosts
                    peer = ScriptedPeer(net, server_name=f"localhost:{port}", port=port)
                    try:
                        results[name] = measure(peer, _SynapseTarget(synapse), synapse.base_url, args.pdus)
                    finally:
                        peer.stop()
                        synapse.stop()
        finally:
            net.stop()
    for name, figures in results.items():
        print(f"{name:9s} {figures['pdus']:6.0f} PDUs in {figures['seconds']:7.2f} s: "
              f"{figures['pdus_per_s']:8.1f} PDUs/s (last /send answered after {figures['answered_s']:.2f} s)")
    if "vignette" in results and "synapse" in results:
        print(f"Vignette/Synapse: {results['vignette']['pdus_per_s'] / results['synapse']['pdus_per_s']:.2f}x")


if __name__ == "__main__":
    main()
