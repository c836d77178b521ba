"""A network partition (issue 14, "Tests"): two servers in a room keep sending messages and
changing state (topic, power levels, membership) while they cannot reach each other. After the
network comes back, both hold the same current state and the same timeline, and that state is
what Synapse computes for the same DAG.

Each partitioned server sits behind a ``Gate`` (tests/support/partition.py): its server name
carries the gate's port, so cutting the gate cuts it off from every other server.

- Two Vignette servers, with a Synapse server in the room as a silent witness that both can
  still reach: it receives both forks as they happen and resolves them itself.
- Vignette and Synapse partitioned from each other: each catches up with the other's fork.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest

from tests.support.client import Client, q, register_user
from tests.support.databases import ENGINES, drop_database
from tests.support.federation import FederationNet, unique_label
from tests.support.partition import Gate
from tests.support.rooms import V3, create_room, get_state, new_user, put_state, send_message
from tests.support.server import RunningServer
from tests.support.synapse_server import SynapseServer

FAST_RETRY = {"destination_min_retry_interval": "500ms", "destination_max_retry_interval": "2s"}
#: Synapse takes durations in milliseconds too; its initial /sync answers are cached for two
#: minutes by default, which would hide new events from the timelines read here.
SYNAPSE_CONFIG = {"federation": {"destination_min_retry_interval": 500, "destination_max_retry_interval": 2000},
                  "caches": {"sync_response_cache_duration": 0}}
SETTLE_S = 120


@attrs.define
class Side:
    """One side of the partition: its admin, a member who leaves during it, one who joins."""

    server_name: str
    gate: Gate
    admin: Client
    leaver: Client
    joiner: Client
    sent: list[str] = attrs.field(factory=list)  # event IDs sent during the partition


def gated_vignette(fednet: FederationNet, tmp_path_factory: pytest.TempPathFactory, engine: str,
                   label: str) -> tuple[RunningServer, dict[str, Any], Gate]:
    gate = Gate()
    server, database = fednet.start_server(
        tmp_path_factory.mktemp(f"part-{label}-{engine}"), engine, unique_label(label),
        server_name=f"localhost:{gate.port}", ip_range_whitelist=["127.0.0.1/32", "::1/128"],
        federation=FAST_RETRY)
    gate.target_port = int(server.config["listeners"][1]["port"])
    return server, database, gate


@pytest.fixture(scope="module", params=ENGINES)
def vignettes(request: pytest.FixtureRequest, fednet: FederationNet,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[tuple[RunningServer, Gate]]]:
    started: list[tuple[RunningServer, dict[str, Any], Gate]] = []
    try:
        for label in ("pa", "pb"):
            started.append(gated_vignette(fednet, tmp_path_factory, request.param, label))
        yield [(server, gate) for server, _database, gate in started]
    finally:
        for server, database, gate in started:
            gate.stop()
            server.stop()
            drop_database(database)


@pytest.fixture(scope="module")
def gated_synapse(fednet: FederationNet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SynapseServer, Gate]]:
    gate = Gate()
    server = SynapseServer.start(tmp_path_factory.mktemp("part-synapse"), fednet.ca, name_port=gate.port,
                                 **SYNAPSE_CONFIG)
    gate.target_port = server.federation_port
    try:
        yield server, gate
    finally:
        gate.stop()
        server.stop()


def wait_for(predicate: Callable[[], bool], what: str | Callable[[], str], timeout: float = SETTLE_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(what if isinstance(what, str) else what())


def state_of(client: Client, room_id: str) -> dict[tuple[str, str], str]:
    response = client.get(f"{V3}/rooms/{q(room_id)}/state")
    assert response.status == 200, response
    return {(e["type"], e["state_key"]): e["event_id"] for e in response.body}


def timeline_of(client: Client, room_id: str) -> set[str]:
    """Every event ID /messages shows, paging back from now to the room's start."""
    seen: set[str] = set()
    token = client.get(f"{V3}/sync", params={"timeout": 0}).body["next_batch"]
    for _ in range(20):
        page = client.get(f"{V3}/rooms/{q(room_id)}/messages", params={"dir": "b", "limit": 500, "from": token})
        assert page.status == 200, page
        seen.update(e["event_id"] for e in page.body["chunk"])
        if not page.body["chunk"] or "end" not in page.body:
            return seen
        token = page.body["end"]
    return seen


def await_members(room_id: str, members: set[str], clients: list[Client], servers: list[Any]) -> None:
    """Joins racing each other leave forks that the next event merges: one, then wait until every
    server holds every member."""
    send_message(clients[0], room_id, "everyone is here")
    for client in clients:
        def seen(c: Client = client) -> set[str]:
            return {k[1] for k in state_of(c, room_id) if k[0] == "m.room.member"}

        wait_for(lambda c=client: members <= seen(c),
                 lambda c=client: f"{c.user_id} lacks {members - seen(c)}\n" + "\n".join(
                     s.output()[-4000:] for s in servers))


def has_event(client: Client, room_id: str, event_id: str) -> bool:
    return client.get(f"{V3}/rooms/{q(room_id)}/event/{q(event_id)}").status == 200


def join(client: Client, room_id: str, via: str) -> None:
    response = client.post(f"{V3}/join/{q(room_id)}", {}, params={"server_name": via})
    assert response.status == 200, response


def sent(side: Side, event_id: str) -> None:
    side.sent.append(event_id)


def fork(side: Side, room_id: str, levels: dict[str, Any], promote: str) -> None:
    """One side's work while cut off: topic, power levels, messages, a leave and a join."""
    tag = side.server_name
    sent(side, put_state(side.admin, room_id, "m.room.topic", {"topic": f"decided on {tag}"}).body["event_id"])
    changed = {**levels, "users": {**levels["users"], promote: 50}}
    sent(side, put_state(side.admin, room_id, "m.room.power_levels", changed).body["event_id"])
    for i in range(3):
        sent(side, send_message(side.admin, room_id, f"{tag} while cut off {i}"))
    left = side.leaver.post(f"{V3}/rooms/{q(room_id)}/leave", {})
    assert left.status == 200, left
    joined = side.joiner.post(f"{V3}/rooms/{q(room_id)}/join", {})
    assert joined.status == 200, joined
    state = state_of(side.admin, room_id)
    side.sent.extend(state[("m.room.member", str(c.user_id))] for c in (side.leaver, side.joiner))


def partition_and_heal(room_id: str, one: Side, other: Side, watchers: list[Client]) -> None:
    """Cut both sides off, let each fork the room, mend, and check that everyone converges."""
    levels = get_state(one.admin, room_id, "m.room.power_levels").body
    one.gate.cut()
    other.gate.cut()
    fork(one, room_id, levels, str(one.leaver.user_id))
    fork(other, room_id, levels, str(other.joiner.user_id))
    # Neither side has the other's fork yet.
    assert not set(other.sent) & timeline_of(one.admin, room_id)
    one.gate.mend()
    other.gate.mend()
    everything = set(one.sent) | set(other.sent)
    admins = [one.admin, other.admin]
    wait_for(lambda: all(everything <= timeline_of(admin, room_id) for admin in admins),
             "the forks never reached both sides")
    wait_for(lambda: state_of(one.admin, room_id) == state_of(other.admin, room_id),
             "the two sides never agreed on the room's state")
    # A message after the partition builds on both forks and reaches everyone.
    after = send_message(one.admin, room_id, "after the partition")
    for client in [other.admin, *watchers]:
        wait_for(lambda c=client: has_event(c, room_id, after), f"{client.user_id} never saw the merge")
    state = state_of(one.admin, room_id)
    assert state == state_of(other.admin, room_id)
    for watcher in watchers:
        wait_for(lambda w=watcher: state_of(w, room_id) == state, f"{watcher.user_id}'s server resolved otherwise")
    timeline = timeline_of(one.admin, room_id)
    wait_for(lambda: timeline_of(other.admin, room_id) == timeline,
             lambda: f"the timelines differ: {timeline ^ timeline_of(other.admin, room_id)}")
    assert everything | {after} <= timeline
    # What the resolution kept is one fork's topic and one fork's power levels, and the
    # memberships of both forks.
    topic = get_state(one.admin, room_id, "m.room.topic").body["topic"]
    assert topic in {f"decided on {one.server_name}", f"decided on {other.server_name}"}
    members = {key[1]: event_id for key, event_id in state.items() if key[0] == "m.room.member"}
    for side in (one, other):
        assert get_state(one.admin, room_id, "m.room.member", str(side.leaver.user_id)).body["membership"] == "leave"
        assert get_state(one.admin, room_id, "m.room.member", str(side.joiner.user_id)).body["membership"] == "join"
        assert str(side.joiner.user_id) in members


def test_two_vignettes_partitioned_with_synapse_watching(vignettes: list[tuple[RunningServer, Gate]],
                                                        gated_synapse: tuple[SynapseServer, Gate]) -> None:
    (a, gate_a), (b, gate_b) = vignettes
    synapse, _gate = gated_synapse
    alice, dave, erin = (new_user(a.base_url) for _ in range(3))
    bob, carol, frank = (new_user(b.base_url) for _ in range(3))
    sam = register_user(synapse.base_url)
    room_id = create_room(alice, preset="public_chat", room_version="10",
                          power_level_content_override={"users": {alice.user_id: 100, bob.user_id: 100}})
    for client in (bob, carol):
        join(client, room_id, a.server_name)
    join(dave, room_id, a.server_name)
    join(sam, room_id, a.server_name)
    await_members(room_id, {str(c.user_id) for c in (alice, bob, carol, dave, sam)}, [alice, bob, sam],
                  [a, b, synapse])
    one = Side(a.server_name, gate_a, alice, dave, erin)
    other = Side(b.server_name, gate_b, bob, carol, frank)
    partition_and_heal(room_id, one, other, [sam])


def test_vignette_and_synapse_partitioned(vignettes: list[tuple[RunningServer, Gate]],
                                          gated_synapse: tuple[SynapseServer, Gate]) -> None:
    (a, gate_a), _b = vignettes
    synapse, gate_s = gated_synapse
    alice, dave, erin = (new_user(a.base_url) for _ in range(3))
    bob, carol, frank = (register_user(synapse.base_url) for _ in range(3))
    room_id = create_room(alice, preset="public_chat", room_version="10",
                          power_level_content_override={"users": {alice.user_id: 100, bob.user_id: 100}})
    for client in (bob, carol, dave):
        join(client, room_id, a.server_name)
    await_members(room_id, {str(c.user_id) for c in (alice, bob, carol, dave)}, [alice, bob], [a, synapse])
    one = Side(a.server_name, gate_a, alice, dave, erin)
    other = Side(synapse.server_name, gate_s, bob, carol, frank)
    partition_and_heal(room_id, one, other, [])
