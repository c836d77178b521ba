"""Invites, leaves and knocks between two Vignette servers over HTTPS on loopback (issue 14,
"Invites, knocks and leaves across servers"), each side seen through its users' /sync."""

from __future__ import annotations

from typing import Any

from tests.support.client import Client, q
from tests.support.fed_pair import Pair
from tests.support.federation_rooms import sync_token, sync_until
from tests.support.rooms import (
    V3,
    create_room,
    get_state,
    invite,
    joined_members,
    new_user,
    put_state,
)

PAIR_PREFIX = "inv"


def section(body: dict[str, Any], name: str, room_id: str) -> dict[str, Any] | None:
    entry: dict[str, Any] | None = body.get("rooms", {}).get(name, {}).get(room_id)
    return entry


def membership_of(client: Client, room_id: str, user_id: str) -> str | None:
    response = get_state(client, room_id, "m.room.member", user_id)
    return response.body.get("membership") if response.status == 200 else None


def wait_membership(client: Client, room_id: str, user_id: str, membership: str) -> None:
    sync_until(client, lambda _body: membership_of(client, room_id, user_id) == membership)


def invited_room(alice: Client, bob: Client, name: str = "invite only") -> tuple[str, dict[str, Any]]:
    """A private room on A; alice invites bob (on B); bob's sync shows the invite."""
    room_id = create_room(alice, preset="private_chat", name=name)
    since = sync_token(bob)
    invite(alice, room_id, str(bob.user_id))
    body = sync_until(bob, lambda b: section(b, "invite", room_id) is not None, since)
    entry = section(body, "invite", room_id)
    assert entry is not None
    return room_id, entry


def test_an_invite_reaches_the_other_server_and_is_accepted(pair: Pair) -> None:
    alice, bob = new_user(pair.a.base_url), new_user(pair.b.base_url)
    room_id, entry = invited_room(alice, bob, "on A")
    events = entry["invite_state"]["events"]
    by_type = {(e["type"], e["state_key"]): e for e in events}
    assert by_type[("m.room.name", "")]["content"] == {"name": "on A"}
    assert by_type[("m.room.member", bob.user_id)]["content"]["membership"] == "invite"
    assert by_type[("m.room.member", bob.user_id)]["sender"] == alice.user_id
    assert ("m.room.create", "") in by_type
    assert membership_of(alice, room_id, str(bob.user_id)) == "invite"
    # Accepting: the join goes through the inviting server (no via needed).
    since = sync_token(bob)
    response = bob.post(f"{V3}/rooms/{q(room_id)}/join", {})
    assert response.status == 200, (response, pair.b.output()[-3000:])
    assert joined_members(alice, room_id) == {alice.user_id, bob.user_id}
    body = sync_until(bob, lambda b: section(b, "join", room_id) is not None, since)
    assert section(body, "invite", room_id) is None


def test_an_invite_rejected_three_times_in_a_row(pair: Pair) -> None:
    alice, bob = new_user(pair.a.base_url), new_user(pair.b.base_url)
    room_id = create_room(alice, preset="private_chat")
    for _ in range(3):
        since = sync_token(bob)
        invite(alice, room_id, str(bob.user_id))
        sync_until(bob, lambda b: section(b, "invite", room_id) is not None, since)
        since = sync_token(bob)
        response = bob.post(f"{V3}/rooms/{q(room_id)}/leave", {"reason": "no thanks"})
        assert response.status == 200, (response, pair.b.output()[-3000:])
        body = sync_until(bob, lambda b: section(b, "leave", room_id) is not None, since)
        left = section(body, "leave", room_id)
        assert left is not None
        own = [e for e in left["timeline"]["events"] if e.get("state_key") == bob.user_id]
        assert own and own[-1]["content"]["membership"] == "leave"
        # The rejection went through A: alice's room shows bob's leave, sent by bob.
        assert membership_of(alice, room_id, str(bob.user_id)) == "leave"
        member = get_state(alice, room_id, "m.room.member", str(bob.user_id)).body
        assert member.get("reason") == "no thanks"
    # After three rejections no invite is pending on B.
    fresh = bob.get(f"{V3}/sync").body
    assert section(fresh, "invite", room_id) is None


def test_the_inviter_rescinds_an_invite(pair: Pair) -> None:
    alice, bob = new_user(pair.a.base_url), new_user(pair.b.base_url)
    room_id, _ = invited_room(alice, bob)
    since = sync_token(bob)
    response = alice.post(f"{V3}/rooms/{q(room_id)}/kick", {"user_id": bob.user_id})
    assert response.status == 200, response
    body = sync_until(bob, lambda b: section(b, "leave", room_id) is not None, since)
    assert section(body, "invite", room_id) is None
    # The rescinded invite cannot be accepted any more.
    refused = bob.post(f"{V3}/rooms/{q(room_id)}/join", {})
    assert refused.status == 403, refused


def test_inviting_a_user_the_other_server_does_not_have_is_refused(pair: Pair) -> None:
    alice = new_user(pair.a.base_url)
    room_id = create_room(alice, preset="private_chat")
    response = alice.post(f"{V3}/rooms/{q(room_id)}/invite", {"user_id": f"@nobody-here:{pair.b.server_name}"})
    assert (response.status, response.errcode) == (403, "M_FORBIDDEN"), response
    assert membership_of(alice, room_id, f"@nobody-here:{pair.b.server_name}") is None


def test_leaving_a_room_on_the_other_server(pair: Pair) -> None:
    alice, bob = new_user(pair.a.base_url), new_user(pair.b.base_url)
    room_id = create_room(alice, preset="public_chat")
    assert bob.post(f"{V3}/join/{q(room_id)}", {}, params={"via": pair.a.server_name}).status == 200
    since = sync_token(bob)
    assert bob.post(f"{V3}/rooms/{q(room_id)}/leave", {}).status == 200
    body = sync_until(bob, lambda b: section(b, "leave", room_id) is not None, since)
    assert section(body, "join", room_id) is None
    wait_membership(alice, room_id, str(bob.user_id), "leave")
    assert joined_members(alice, room_id) == {alice.user_id}


def test_kick_ban_and_unban_across_servers(pair: Pair) -> None:
    alice, bob = new_user(pair.a.base_url), new_user(pair.b.base_url)
    room_id = create_room(alice, preset="public_chat")
    assert bob.post(f"{V3}/join/{q(room_id)}", {}, params={"via": pair.a.server_name}).status == 200
    since = sync_token(bob)
    assert alice.post(f"{V3}/rooms/{q(room_id)}/ban", {"user_id": bob.user_id, "reason": "spam"}).status == 200
    body = sync_until(bob, lambda b: section(b, "leave", room_id) is not None, since)
    banned = [e for e in section(body, "leave", room_id)["timeline"]["events"]  # type: ignore[index]
              if e.get("state_key") == bob.user_id]
    assert banned[-1]["content"]["membership"] == "ban"
    refused = bob.post(f"{V3}/join/{q(room_id)}", {}, params={"via": pair.a.server_name})
    assert refused.status == 403, refused
    assert alice.post(f"{V3}/rooms/{q(room_id)}/unban", {"user_id": bob.user_id}).status == 200
    response = bob.post(f"{V3}/join/{q(room_id)}", {}, params={"via": pair.a.server_name})
    assert response.status == 200, (response, pair.b.output()[-3000:])
    assert joined_members(alice, room_id) == {alice.user_id, bob.user_id}


def knock_room(alice: Client) -> str:
    room_id = create_room(alice, preset="private_chat", name="knock here")
    assert put_state(alice, room_id, "m.room.join_rules", {"join_rule": "knock"}).status == 200
    return room_id


def knock(client: Client, room_id: str, server_name: str) -> None:
    since = sync_token(client)
    response = client.post(f"{V3}/knock/{q(room_id)}", {"reason": "let me in"}, params={"via": server_name})
    assert response.status == 200, response
    assert response.body == {"room_id": room_id}
    body = sync_until(client, lambda b: section(b, "knock", room_id) is not None, since)
    entry = section(body, "knock", room_id)
    assert entry is not None
    shown = {(e["type"], e["state_key"]): e for e in entry["knock_state"]["events"]}
    assert shown[("m.room.name", "")]["content"] == {"name": "knock here"}
    assert shown[("m.room.member", client.user_id)]["content"]["membership"] == "knock"


def test_a_knock_that_is_accepted(pair: Pair) -> None:
    alice, bob = new_user(pair.a.base_url), new_user(pair.b.base_url)
    room_id = knock_room(alice)
    knock(bob, room_id, pair.a.server_name)
    wait_membership(alice, room_id, str(bob.user_id), "knock")
    assert get_state(alice, room_id, "m.room.member", str(bob.user_id)).body["reason"] == "let me in"
    since = sync_token(bob)
    invite(alice, room_id, str(bob.user_id))
    sync_until(bob, lambda b: section(b, "invite", room_id) is not None, since)
    assert bob.post(f"{V3}/rooms/{q(room_id)}/join", {}).status == 200
    assert joined_members(alice, room_id) == {alice.user_id, bob.user_id}


def test_a_knock_that_is_refused(pair: Pair) -> None:
    alice, bob = new_user(pair.a.base_url), new_user(pair.b.base_url)
    room_id = knock_room(alice)
    knock(bob, room_id, pair.a.server_name)
    wait_membership(alice, room_id, str(bob.user_id), "knock")
    since = sync_token(bob)
    assert alice.post(f"{V3}/rooms/{q(room_id)}/kick", {"user_id": bob.user_id}).status == 200
    body = sync_until(bob, lambda b: section(b, "leave", room_id) is not None, since)
    assert section(body, "knock", room_id) is None


def test_a_knock_taken_back(pair: Pair) -> None:
    alice, bob = new_user(pair.a.base_url), new_user(pair.b.base_url)
    room_id = knock_room(alice)
    knock(bob, room_id, pair.a.server_name)
    since = sync_token(bob)
    assert bob.post(f"{V3}/rooms/{q(room_id)}/leave", {}).status == 200
    sync_until(bob, lambda b: section(b, "leave", room_id) is not None, since)
    wait_membership(alice, room_id, str(bob.user_id), "leave")


def test_knocking_on_a_room_that_does_not_allow_it(pair: Pair) -> None:
    alice, bob = new_user(pair.a.base_url), new_user(pair.b.base_url)
    room_id = create_room(alice, preset="private_chat")
    response = bob.post(f"{V3}/knock/{q(room_id)}", {}, params={"via": pair.a.server_name})
    assert (response.status, response.errcode) == (403, "M_FORBIDDEN"), response
