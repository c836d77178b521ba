"""Invites, rejections, knocks, leaves and backfill with a real Synapse (matrix-synapse from PyPI), in
both directions, each side seen through its users' /sync."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.client import Client, q, register_user
from tests.support.federation_rooms import sync_token, sync_until
from tests.support.rooms import (
    V3,
    create_room,
    get_state,
    invite,
    joined_members,
    new_user,
    put_state,
    send_message,
)
from tests.support.server import RunningServer
from tests.support.synapse_server import SynapseServer

FED_SERVER_CONFIG = {"localhost_name": True, "ip_range_whitelist": ["127.0.0.1/32", "::1/128"]}


@pytest.fixture(scope="module")
def vignette(fed_server: RunningServer) -> RunningServer:
    return fed_server


def in_section(body: dict[str, Any], name: str, room_id: str) -> bool:
    return room_id in body.get("rooms", {}).get(name, {})


def membership_of(client: Client, room_id: str, user_id: str) -> str | None:
    response = get_state(client, room_id, "m.room.member", user_id)
    return response.body.get("membership") if response.status == 200 else None


def invite_and_wait(inviter: Client, invitee: Client, room_id: str) -> dict[str, Any]:
    since = sync_token(invitee)
    invite(inviter, room_id, str(invitee.user_id))
    body = sync_until(invitee, lambda b: in_section(b, "invite", room_id), since)
    entry: dict[str, Any] = body["rooms"]["invite"][room_id]
    return entry


def test_we_invite_a_synapse_user_who_accepts(synapse: SynapseServer, vignette: RunningServer) -> None:
    alice = new_user(vignette.base_url)
    room_id = create_room(alice, preset="private_chat", name="from Vignette")
    bob = register_user(synapse.base_url)
    entry = invite_and_wait(alice, bob, room_id)
    names = [e["content"].get("name") for e in entry["invite_state"]["events"] if e["type"] == "m.room.name"]
    assert names == ["from Vignette"]
    response = bob.post(f"{V3}/rooms/{q(room_id)}/join", {})
    assert response.status == 200, (response, synapse.output()[-3000:])
    assert joined_members(alice, room_id) == {alice.user_id, bob.user_id}


def test_a_synapse_user_invites_us_and_we_reject_then_accept(synapse: SynapseServer,
                                                            vignette: RunningServer) -> None:
    bob = register_user(synapse.base_url)
    room_id = create_room(bob, preset="private_chat", name="from Synapse")
    alice = new_user(vignette.base_url)
    entry = invite_and_wait(bob, alice, room_id)
    shown = {(e["type"], e["state_key"]): e for e in entry["invite_state"]["events"]}
    assert shown[("m.room.name", "")]["content"] == {"name": "from Synapse"}
    assert shown[("m.room.member", alice.user_id)]["content"]["membership"] == "invite"
    since = sync_token(alice)
    response = alice.post(f"{V3}/rooms/{q(room_id)}/leave", {})
    assert response.status == 200, (response, vignette.output()[-3000:])
    sync_until(alice, lambda b: in_section(b, "leave", room_id), since)
    sync_until(bob, lambda _b: membership_of(bob, room_id, str(alice.user_id)) == "leave")
    invite_and_wait(bob, alice, room_id)
    response = alice.post(f"{V3}/join/{q(room_id)}", {})
    assert response.status == 200, (response, vignette.output()[-3000:])
    assert joined_members(alice, room_id) == {alice.user_id, bob.user_id}
    assert joined_members(bob, room_id) == {alice.user_id, bob.user_id}


def test_we_knock_on_a_synapse_room_and_are_let_in(synapse: SynapseServer, vignette: RunningServer) -> None:
    bob = register_user(synapse.base_url)
    room_id = create_room(bob, preset="private_chat", name="knock on Synapse")
    assert put_state(bob, room_id, "m.room.join_rules", {"join_rule": "knock"}).status == 200
    alice = new_user(vignette.base_url)
    since = sync_token(alice)
    response = alice.post(f"{V3}/knock/{q(room_id)}", {"reason": "hi"}, params={"via": synapse.server_name})
    assert response.status == 200, (response, vignette.output()[-3000:])
    body = sync_until(alice, lambda b: in_section(b, "knock", room_id), since)
    shown = {(e["type"], e["state_key"]) for e in body["rooms"]["knock"][room_id]["knock_state"]["events"]}
    assert ("m.room.name", "") in shown
    sync_until(bob, lambda _b: membership_of(bob, room_id, str(alice.user_id)) == "knock")
    invite_and_wait(bob, alice, room_id)
    assert alice.post(f"{V3}/join/{q(room_id)}", {}).status == 200
    assert joined_members(bob, room_id) == {alice.user_id, bob.user_id}


def test_a_synapse_user_knocks_on_our_room_and_is_let_in(synapse: SynapseServer, vignette: RunningServer) -> None:
    alice = new_user(vignette.base_url)
    room_id = create_room(alice, preset="private_chat", name="knock on Vignette")
    assert put_state(alice, room_id, "m.room.join_rules", {"join_rule": "knock"}).status == 200
    bob = register_user(synapse.base_url)
    response = bob.post(f"{V3}/knock/{q(room_id)}", {}, params={"via": vignette.server_name})
    assert response.status == 200, (response, synapse.output()[-3000:])
    assert membership_of(alice, room_id, str(bob.user_id)) == "knock"
    invite_and_wait(alice, bob, room_id)
    assert bob.post(f"{V3}/join/{q(room_id)}", {}).status == 200
    assert joined_members(alice, room_id) == {alice.user_id, bob.user_id}


def test_we_rescind_an_invite_to_a_synapse_user(synapse: SynapseServer, vignette: RunningServer) -> None:
    alice = new_user(vignette.base_url)
    room_id = create_room(alice, preset="private_chat")
    bob = register_user(synapse.base_url)
    invite_and_wait(alice, bob, room_id)
    since = sync_token(bob)
    assert alice.post(f"{V3}/rooms/{q(room_id)}/kick", {"user_id": bob.user_id}).status == 200
    sync_until(bob, lambda b: in_section(b, "leave", room_id), since)


def test_we_leave_a_synapse_room(synapse: SynapseServer, vignette: RunningServer) -> None:
    bob = register_user(synapse.base_url)
    room_id = create_room(bob, preset="public_chat")
    alice = new_user(vignette.base_url)
    assert alice.post(f"{V3}/join/{q(room_id)}", {}, params={"via": synapse.server_name}).status == 200
    since = sync_token(alice)
    assert alice.post(f"{V3}/rooms/{q(room_id)}/leave", {}).status == 200
    sync_until(alice, lambda b: in_section(b, "leave", room_id), since)
    sync_until(bob, lambda _b: membership_of(bob, room_id, str(alice.user_id)) == "leave")


def test_we_backfill_a_synapse_room(synapse: SynapseServer, vignette: RunningServer) -> None:
    """History from before our join comes from Synapse's /backfill as we page back."""
    bob = register_user(synapse.base_url)
    room_id = create_room(bob, preset="public_chat")
    for i in range(120):
        send_message(bob, room_id, f"old {i}")
    alice = new_user(vignette.base_url)
    assert alice.post(f"{V3}/join/{q(room_id)}", {}, params={"via": synapse.server_name}).status == 200
    token = alice.get(f"{V3}/sync").body["next_batch"]
    seen: list[dict[str, Any]] = []
    for _ in range(20):
        page = alice.get(f"{V3}/rooms/{q(room_id)}/messages", params={"dir": "b", "limit": 50, "from": token}).body
        seen.extend(page["chunk"])
        if "end" not in page or not page["chunk"]:
            break
        token = page["end"]
    bodies = [e["content"].get("body") for e in seen if e["type"] == "m.room.message"]
    assert bodies == [f"old {i}" for i in reversed(range(120))], (bodies[:5], vignette.output()[-3000:])
    assert seen[-1]["type"] == "m.room.create"
