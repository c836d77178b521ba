"""Partial-state joins (MSC3706) between real servers: a Vignette user joining a room on another
Vignette and on Synapse (each answering ``send_join`` without the members), and a Synapse user
joining our room (Synapse asks for ``omit_members``). The joiner sends at once; its member list
is complete once the background resync is done."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.client import Client, q, register_user
from tests.support.databases import drop_database
from tests.support.federation import FederationNet, unique_label
from tests.support.federation_rooms import sync_token, sync_until, timeline_bodies
from tests.support.rooms import V3, create_room, joined_members, new_user, send_message
from tests.support.server import RunningServer
from tests.support.synapse_server import SynapseServer

LOOPBACK = ["127.0.0.1/32", "::1/128"]
FED_SERVER_CONFIG = {"localhost_name": True, "ip_range_whitelist": LOOPBACK}
MEMBERS = 6


@pytest.fixture(scope="module")
def resident(fed_server: RunningServer, fednet: FederationNet,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A second Vignette (same engine as ``fed_server``) hosting rooms the first joins."""
    engine = "psycopg2" if "psycopg2" in str(fed_server.directory) else "sqlite3"
    server, database = fednet.start_server(Path(tmp_path_factory.mktemp(f"resident-{engine}")), engine,
                                           unique_label("res"), localhost_name=True, ip_range_whitelist=LOOPBACK)
    try:
        yield server
    finally:
        server.stop()
        drop_database(database)


def join_via(client: Client, room_id: str, server_name: str) -> None:
    response = client.post(f"{V3}/join/{q(room_id)}", {}, params={"server_name": server_name})
    assert response.status == 200, response


def completed_partially(server: RunningServer, room_id: str) -> bool:
    log = (server.directory / "homeserver.log").read_text(errors="replace")
    return f"{room_id}: state complete" in log


def message_reaches(writer: Client, reader: Client, room_id: str, text: str) -> None:
    since = sync_token(reader)
    send_message(writer, room_id, text)
    sync_until(reader, lambda body: text in timeline_bodies(body, room_id), since)


def test_we_join_a_vignette_room_with_partial_state(fed_server: RunningServer, resident: RunningServer) -> None:
    owner = new_user(resident.base_url)
    room_id = create_room(owner, preset="public_chat", name="big room")
    members = [new_user(resident.base_url) for _ in range(MEMBERS)]
    for member in members:
        join_via(member, room_id, resident.server_name)
    bob = new_user(fed_server.base_url)
    join_via(bob, room_id, resident.server_name)
    message_reaches(bob, owner, room_id, "sent at once")
    expected = {owner.user_id, bob.user_id, *(m.user_id for m in members)}
    assert joined_members(bob, room_id) == expected  # waits for the resync
    assert completed_partially(fed_server, room_id)
    message_reaches(members[0], bob, room_id, "and back")


def test_we_join_a_synapse_room_with_partial_state(synapse: SynapseServer, fed_server: RunningServer) -> None:
    owner = register_user(synapse.base_url)
    room_id = create_room(owner, preset="public_chat", name="on Synapse")
    members = [register_user(synapse.base_url) for _ in range(MEMBERS)]
    for member in members:
        assert member.post(f"{V3}/join/{q(room_id)}", {}).status == 200
    bob = new_user(fed_server.base_url)
    response = bob.post(f"{V3}/join/{q(room_id)}", {}, params={"server_name": synapse.server_name})
    assert response.status == 200, (response, fed_server.output()[-3000:], synapse.output()[-3000:])
    message_reaches(bob, owner, room_id, "sent at once to Synapse")
    expected = {owner.user_id, bob.user_id, *(m.user_id for m in members)}
    assert joined_members(bob, room_id) == expected
    assert completed_partially(fed_server, room_id), fed_server.output()[-3000:]
    message_reaches(members[1], bob, room_id, "from a member we learnt of later")


def test_a_synapse_user_joins_our_room_with_partial_state(synapse: SynapseServer,
                                                         fed_server: RunningServer) -> None:
    alice = new_user(fed_server.base_url)
    room_id = create_room(alice, preset="public_chat", name="on Vignette")
    members = [new_user(fed_server.base_url) for _ in range(MEMBERS)]
    for member in members:
        assert member.post(f"{V3}/join/{q(room_id)}", {}).status == 200
    carol = register_user(synapse.base_url)
    join_via(carol, room_id, fed_server.server_name)
    log = (fed_server.directory / "homeserver.log").read_text(errors="replace")
    asked = [line for line in log.splitlines() if "/v2/send_join/" in line and q(room_id) in line]
    assert asked and all("omit_members=true" in line for line in asked), asked
    expected = {alice.user_id, carol.user_id, *(m.user_id for m in members)}
    assert joined_members(carol, room_id) == expected  # Synapse completed its state from ours
    message_reaches(carol, alice, room_id, "from Synapse")
    message_reaches(alice, carol, room_id, "to Synapse")
