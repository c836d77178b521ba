"""Rooms shared with a real Synapse (matrix-synapse from PyPI) over HTTPS on loopback, in both
directions: a Synapse user joins a Vignette room, and a Vignette user joins a Synapse room;
then messages and typing notifications flow both ways, each seen through the other's /sync."""

from __future__ import annotations

import pytest

from tests.support.client import Client, q, register_user
from tests.support.federation_rooms import sync_token, sync_until, timeline_bodies, typing_user_ids
from tests.support.rooms import V3, create_room, joined_members, new_user, send_message
from tests.support.server import RunningServer
from tests.support.synapse_server import SynapseServer

FED_SERVER_CONFIG = {"localhost_name": True, "ip_range_whitelist": ["127.0.0.1/32", "::1/128"]}


@pytest.fixture(scope="module")
def vignette(fed_server: RunningServer) -> RunningServer:
    """Reachable from Synapse as ``localhost:<port>`` (Synapse can use no DNS server of ours)."""
    return fed_server


def join_via(client: Client, room_id: str, server_name: str) -> None:
    response = client.post(f"{V3}/join/{q(room_id)}", {}, params={"server_name": server_name})
    assert response.status == 200, response
    assert response.body["room_id"] == room_id


def set_typing(client: Client, room_id: str, typing: bool) -> None:
    body = {"typing": True, "timeout": 30000} if typing else {"typing": False}
    response = client.put(f"{V3}/rooms/{q(room_id)}/typing/{q(str(client.user_id))}", body)
    assert response.status == 200, response


def messages_and_typing_both_ways(ours: Client, theirs: Client, room_id: str) -> None:
    for writer, reader in ((ours, theirs), (theirs, ours)):
        text = f"hello from {writer.user_id}"
        since = sync_token(reader)
        send_message(writer, room_id, text)
        sync_until(reader, lambda body, t=text: t in timeline_bodies(body, room_id), since)
    for writer, reader in ((ours, theirs), (theirs, ours)):
        since = sync_token(reader)
        set_typing(writer, room_id, True)
        sync_until(reader, lambda body, w=writer: str(w.user_id) in typing_user_ids(body, room_id), since)
        set_typing(writer, room_id, False)


def test_a_synapse_user_joins_our_room(synapse: SynapseServer, vignette: RunningServer) -> None:
    alice = new_user(vignette.base_url)
    room_id = create_room(alice, preset="public_chat")
    bob = register_user(synapse.base_url)
    response = bob.post(f"{V3}/join/{q(room_id)}", {}, params={"server_name": vignette.server_name})
    assert response.status == 200, (response, vignette.output()[-3000:], synapse.output()[-3000:])
    assert joined_members(alice, room_id) == {alice.user_id, bob.user_id}
    assert joined_members(bob, room_id) == {alice.user_id, bob.user_id}
    messages_and_typing_both_ways(alice, bob, room_id)


def test_we_join_a_synapse_room(synapse: SynapseServer, vignette: RunningServer) -> None:
    bob = register_user(synapse.base_url)
    room_id = create_room(bob, preset="public_chat", name="on Synapse")
    alice = new_user(vignette.base_url)
    response = alice.post(f"{V3}/join/{q(room_id)}", {}, params={"server_name": synapse.server_name})
    assert response.status == 200, (response, vignette.output()[-3000:], synapse.output()[-3000:])
    assert joined_members(alice, room_id) == {alice.user_id, bob.user_id}
    name = alice.get(f"{V3}/rooms/{q(room_id)}/state/m.room.name/")
    assert name.body == {"name": "on Synapse"}
    sync_until(bob, lambda body: alice.user_id in joined_members(bob, room_id))
    messages_and_typing_both_ways(alice, bob, room_id)
