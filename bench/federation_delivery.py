"""Cross-server delivery (issue 13's second federation benchmark): a user on server A sends a
message, and we time until a user on server B sees it in ``/sync``. Four pairs run in the same
process, on the same machine, in turn: Vignette->Vignette, Vignette->Synapse, Synapse->Vignette and
Synapse->Synapse (the baseline).

    python -m bench.federation_delivery --messages 50 --workdir /tmp/fd

Each message is sent once the one before it has been seen, so a sample is one message's trip:
A's client API, A's federation sender, B's ``/send``, B's sync. B long-polls ``/sync`` from the
token it held before the send. Servers run over HTTPS on loopback with the tests' CA and DNS, on
SQLite, with rate limits off. A script, not a test: it asserts nothing about the times.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.federated_join import start_two_of_each
from bench.stats import latency_summary
from tests.support.client import Client, q, register_user
from tests.support.federation import FederationNet
from tests.support.rooms import V3, create_room, new_user, send_message


def sync_token(client: Client) -> str:
    return str(client.get(f"{V3}/sync", params={"timeout": 0}, timeout=120).body["next_batch"])


def wait_for_event(client: Client, since: str, room_id: str, event_id: str, timeout_s: float = 120) -> str:
    """Long-poll ``/sync`` from ``since`` until ``event_id`` is in the room's timeline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = client.get(f"{V3}/sync", params={"since": since, "timeout": 30000}, timeout=60).body
        since = body["next_batch"]
        events = body.get("rooms", {}).get("join", {}).get(room_id, {}).get("timeline", {}).get("events", [])
        if any(event.get("event_id") == event_id for event in events):
            return since
    raise TimeoutError(f"{event_id} never reached the receiver's /sync")


def join_across(sender: Client, receiver: Client, sender_server: str) -> tuple[str, str]:
    """A public room on the sender's server, joined by the receiver; returns (room, receiver's token)."""
    room_id = create_room(sender, preset="public_chat")
    response = receiver.post(f"{V3}/join/{q(room_id)}", {}, params={"server_name": sender_server}, timeout=300)
    assert response.status == 200, response
    since = sync_token(receiver)
    # The sender's server must have the join before it sends to the receiver's server.
    warm = send_message(sender, room_id, "warm-up")
    return room_id, wait_for_event(receiver, since, room_id, warm)


def measure(sender: Client, receiver: Client, sender_server: str, messages: int) -> dict[str, Any]:
    room_id, since = join_across(sender, receiver, sender_server)
    samples = []
    for i in range(messages):
        started = time.perf_counter()
        event_id = send_message(sender, room_id, f"delivery {i}")
        since = wait_for_event(receiver, since, room_id, event_id)
        samples.append(time.perf_counter() - started)
    return {"messages": messages, **{k: round(v, 1) for k, v in latency_summary(samples).items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fed-delivery-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    net = FederationNet.create(workdir / "net")
    started: list[Any] = []
    results: dict[str, dict[str, Any]] = {}
    try:
        synapses, vignettes = start_two_of_each(workdir, net, started, ("a", "b"))

        def vignette_user(index: int) -> Client:
            return new_user(vignettes[index].base_url)

        def synapse_user(index: int) -> Client:
            return register_user(synapses[index].base_url)

        pairs = {
            "vignette -> vignette": (vignette_user(0), vignette_user(1), vignettes[0].server_name),
            "vignette -> synapse": (vignette_user(0), synapse_user(1), vignettes[0].server_name),
            "synapse -> vignette": (synapse_user(0), vignette_user(1), synapses[0].server_name),
            "synapse -> synapse": (synapse_user(0), synapse_user(1), synapses[0].server_name),
        }
        for label, (sender, receiver, sender_server) in pairs.items():
            results[label] = measure(sender, receiver, sender_server, args.messages)
    finally:
        for server in reversed(started):
            server.stop()
        net.stop()
    baseline = results.get("synapse -> synapse", {}).get("p99_ms")
    if baseline:
        for figures in results.values():
            figures["p99_vs_synapse_to_synapse"] = round(figures["p99_ms"] / baseline, 2)
    print(json.dumps({"messages": args.messages, "results": results}, indent=2))


if __name__ == "__main__":
    main()
