"""Membership transitions over HTTP, and the auth rules refusing the forbidden ones."""

from __future__ import annotations

import pytest

from tests.support.client import Client, q
from tests.support.rooms import (
    V3,
    create_room,
    get_state,
    invite,
    join,
    joined_members,
    leave,
    new_user,
    put_state,
    send_message,
)
from tests.support.server import RunningServer


@pytest.fixture
def users(server: RunningServer) -> list[Client]:
    return [new_user(server.base_url) for _ in range(3)]


def membership_of(client: Client, room_id: str, user_id: str) -> str | None:
    response = get_state(client, room_id, "m.room.member", user_id)
    return response.body.get("membership") if response.status == 200 else None


def post(client: Client, room_id: str, action: str, body: dict) -> object:
    return client.post(f"{V3}/rooms/{q(room_id)}/{action}", body)


def test_join_public_room_by_id_and_by_alias(users: list[Client]) -> None:
    alice, bob, carol = users
    room_id = create_room(alice, preset="public_chat", room_alias_name=f"pub{alice.user_id[5:13]}")
    assert join(bob, room_id).body == {"room_id": room_id}
    alias = f"#pub{alice.user_id[5:13]}:test.local"
    assert join(carol, alias).body == {"room_id": room_id}
    assert joined_members(alice, room_id) == {alice.user_id, bob.user_id, carol.user_id}
    assert room_id in bob.get(f"{V3}/joined_rooms").body["joined_rooms"]
    via_room_path = bob.post(f"{V3}/rooms/{q(room_id)}/join", {})
    assert via_room_path.status == 200


def test_join_body_keys_go_into_the_member_event(users: list[Client]) -> None:
    """As Synapse: extra keys (a per-room name, a reason, custom fields) become content;
    the server alone sets membership and a restricted-join authoriser."""
    alice, bob, carol = users
    room_id = create_room(alice, preset="public_chat")
    body = {"reason": "hello", "displayname": "Bob here", "org.example.flag": {"n": 1},
            "membership": "ban", "join_authorised_via_users_server": alice.user_id,
            "third_party_signed": {"sender": alice.user_id, "mxid": bob.user_id, "token": "t",
                                   "signatures": {}}}
    assert bob.post(f"{V3}/join/{q(room_id)}", body).status == 200
    member = get_state(alice, room_id, "m.room.member", bob.user_id).body
    assert member == {"membership": "join", "reason": "hello", "displayname": "Bob here",
                      "org.example.flag": {"n": 1}}
    # Joining again with an empty body changes nothing; with new keys, the event says them.
    assert bob.post(f"{V3}/join/{q(room_id)}", {}).status == 200
    assert get_state(alice, room_id, "m.room.member", bob.user_id).body == member
    assert bob.post(f"{V3}/join/{q(room_id)}", {"displayname": "Bob again"}).status == 200
    assert get_state(alice, room_id, "m.room.member", bob.user_id).body["displayname"] == "Bob again"
    # The same through /rooms/{roomId}/join; with no displayname the profile fills it in.
    assert carol.put(f"{V3}/profile/{q(carol.user_id)}/displayname", {"displayname": "Carol"}).status == 200
    assert carol.post(f"{V3}/rooms/{q(room_id)}/join", {"custom": [1, 2]}).status == 200
    member = get_state(alice, room_id, "m.room.member", carol.user_id).body
    assert member == {"membership": "join", "displayname": "Carol", "custom": [1, 2]}
    for bad in ({"reason": 5}, {"x": 1.5}, {"x": 2**60}):
        response = bob.post(f"{V3}/join/{q(room_id)}", bad)
        assert (response.status, response.errcode) == (400, "M_BAD_JSON"), (bad, response)


def test_join_invite_only_room_needs_an_invite(users: list[Client]) -> None:
    alice, bob, _ = users
    room_id = create_room(alice, preset="private_chat")
    refused = join(bob, room_id, expect=403)
    assert refused.errcode == "M_FORBIDDEN"
    invite(alice, room_id, bob.user_id)
    assert membership_of(alice, room_id, bob.user_id) == "invite"
    join(bob, room_id)
    assert membership_of(alice, room_id, bob.user_id) == "join"


def test_reject_invite_by_leaving(users: list[Client]) -> None:
    alice, bob, _ = users
    room_id = create_room(alice, invite=[bob.user_id])
    leave(bob, room_id)
    assert membership_of(alice, room_id, bob.user_id) == "leave"
    assert room_id not in bob.get(f"{V3}/joined_rooms").body["joined_rooms"]


def test_leave_then_rejoin_public_and_not_private(users: list[Client]) -> None:
    alice, bob, carol = users
    public = create_room(alice, preset="public_chat")
    join(bob, public)
    leave(bob, public)
    assert bob.user_id not in joined_members(alice, public)
    join(bob, public)
    private = create_room(alice, invite=[carol.user_id])
    join(carol, private)
    leave(carol, private)
    join(carol, private, expect=403)


def test_kick_needs_power_and_a_member(users: list[Client]) -> None:
    alice, bob, carol = users
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    join(carol, room_id)
    refused = post(bob, room_id, "kick", {"user_id": carol.user_id})
    assert (refused.status, refused.errcode) == (403, "M_FORBIDDEN")
    kicked = post(alice, room_id, "kick", {"user_id": carol.user_id, "reason": "spam"})
    assert kicked.status == 200
    member = get_state(alice, room_id, "m.room.member", carol.user_id).body
    assert member == {"membership": "leave", "reason": "spam"}
    again = post(alice, room_id, "kick", {"user_id": carol.user_id})
    assert again.status == 403
    join(carol, room_id)  # a kick is not a ban


def test_ban_unban_and_rejoin(users: list[Client]) -> None:
    alice, bob, _ = users
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    assert post(bob, room_id, "ban", {"user_id": alice.user_id}).status == 403
    assert post(alice, room_id, "ban", {"user_id": bob.user_id}).status == 200
    assert membership_of(alice, room_id, bob.user_id) == "ban"
    assert join(bob, room_id, expect=403).errcode == "M_FORBIDDEN"
    assert invite(alice, room_id, bob.user_id, expect=403).errcode == "M_FORBIDDEN"
    assert post(alice, room_id, "unban", {"user_id": bob.user_id}).status == 200
    assert membership_of(alice, room_id, bob.user_id) == "leave"
    join(bob, room_id)
    assert post(alice, room_id, "unban", {"user_id": bob.user_id}).status == 403


def test_invite_needs_the_invite_level_and_membership(users: list[Client]) -> None:
    alice, bob, carol = users
    room_id = create_room(alice, preset="public_chat")
    assert invite(carol, room_id, bob.user_id, expect=403).errcode == "M_FORBIDDEN"
    join(bob, room_id)
    # The default invite level is 50; bob has 0.
    assert invite(bob, room_id, carol.user_id, expect=403).errcode == "M_FORBIDDEN"
    invite(alice, room_id, carol.user_id)
    # Already joined users cannot be invited.
    assert invite(alice, room_id, bob.user_id, expect=403).status == 403


def test_knock_and_accept(users: list[Client]) -> None:
    alice, bob, _ = users
    room_id = create_room(alice, room_version="10")
    assert put_state(alice, room_id, "m.room.join_rules", {"join_rule": "knock"}).status == 200
    knocked = bob.post(f"{V3}/knock/{q(room_id)}", {"reason": "let me in"})
    assert knocked.status == 200, knocked
    assert membership_of(alice, room_id, bob.user_id) == "knock"
    invite(alice, room_id, bob.user_id)
    join(bob, room_id)


def test_knock_refused_when_the_room_does_not_allow_it(users: list[Client]) -> None:
    alice, bob, _ = users
    room_id = create_room(alice, preset="public_chat")
    refused = bob.post(f"{V3}/knock/{q(room_id)}", {})
    assert (refused.status, refused.errcode) == (403, "M_FORBIDDEN")
    old = create_room(alice, room_version="6")
    assert bob.post(f"{V3}/knock/{q(old)}", {}).status == 403


@pytest.mark.parametrize("rule", ["restricted", "knock_restricted"])
def test_restricted_join_through_another_room(users: list[Client], rule: str) -> None:
    alice, bob, carol = users
    space = create_room(alice, preset="public_chat")
    join(bob, space)
    room_id = create_room(alice)
    allow = [{"type": "m.room_membership", "room_id": space}]
    assert put_state(alice, room_id, "m.room.join_rules", {"join_rule": rule, "allow": allow}).status == 200
    join(bob, room_id)
    member = get_state(alice, room_id, "m.room.member", bob.user_id).body
    assert member["join_authorised_via_users_server"] == alice.user_id
    assert join(carol, room_id, expect=403).errcode == "M_FORBIDDEN"


def test_forget(users: list[Client]) -> None:
    alice, bob, _ = users
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    refused = bob.post(f"{V3}/rooms/{q(room_id)}/forget", {})
    assert refused.status == 400
    leave(bob, room_id)
    assert bob.post(f"{V3}/rooms/{q(room_id)}/forget", {}).status == 200


def test_members_filters_and_at(users: list[Client]) -> None:
    alice, bob, carol = users
    room_id = create_room(alice, preset="public_chat", invite=[carol.user_id])
    join(bob, room_id)
    before_leave = send_message(alice, room_id)
    token = alice.get(f"{V3}/rooms/{q(room_id)}/messages", params={"dir": "b", "limit": 1}).body["start"]
    leave(bob, room_id)

    def members(**params: str) -> dict[str, str]:
        response = alice.get(f"{V3}/rooms/{q(room_id)}/members", params=params)
        assert response.status == 200, response
        return {e["state_key"]: e["content"]["membership"] for e in response.body["chunk"]}

    assert members() == {alice.user_id: "join", bob.user_id: "leave", carol.user_id: "invite"}
    assert set(members(membership="join")) == {alice.user_id}
    assert set(members(not_membership="leave")) == {alice.user_id, carol.user_id}
    assert members(at=token)[bob.user_id] == "join"
    assert before_leave
    bad = alice.get(f"{V3}/rooms/{q(room_id)}/members", params={"membership": "nonsense"})
    assert bad.status == 400


def test_outsiders_cannot_read_members(users: list[Client]) -> None:
    alice, _, carol = users
    room_id = create_room(alice)
    assert carol.get(f"{V3}/rooms/{q(room_id)}/members").status == 403
    assert carol.get(f"{V3}/rooms/{q(room_id)}/joined_members").status == 403


def test_left_user_sees_members_as_they_were_when_leaving(users: list[Client]) -> None:
    alice, bob, carol = users
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    leave(bob, room_id)
    join(carol, room_id)
    response = bob.get(f"{V3}/rooms/{q(room_id)}/members")
    assert response.status == 200
    assert carol.user_id not in {e["state_key"] for e in response.body["chunk"]}


def test_remote_rooms_and_aliases_are_a_clear_404(users: list[Client]) -> None:
    alice = users[0]
    for target in ("!nowhere:elsewhere.example", "#lost:elsewhere.example", "#lost:test.local"):
        response = alice.post(f"{V3}/join/{q(target)}", {}, params={"server_name": "elsewhere.example"})
        assert (response.status, response.errcode) == (404, "M_NOT_FOUND"), response


def test_inviting_a_user_of_a_server_that_cannot_be_reached(users: list[Client]) -> None:
    """The invitee's server must sign the invite first: unreachable, the invite fails
    (502, as Synapse) and nothing enters the room."""
    alice = users[0]
    room_id = create_room(alice)
    response = invite(alice, room_id, "@someone:elsewhere.invalid", expect=502)
    assert response.errcode == "M_UNKNOWN"
    member = alice.get(f"{V3}/rooms/{q(room_id)}/state/m.room.member/{q('@someone:elsewhere.invalid')}")
    assert member.status == 404


@pytest.mark.parametrize("bad", ["not-a-room", "!", "#noserver", "@user:test.local"])
def test_malformed_room_ids(users: list[Client], bad: str) -> None:
    alice = users[0]
    assert alice.post(f"{V3}/join/{q(bad)}", {}).status in (400, 404)
    assert alice.post(f"{V3}/rooms/{q(bad)}/leave", {}).errcode == "M_INVALID_PARAM"
    assert alice.post(f"{V3}/rooms/{q(bad)}/invite", {"user_id": alice.user_id}).errcode == "M_INVALID_PARAM"


@pytest.mark.parametrize("body", [{}, {"user_id": 5}, {"user_id": "nope"}, {"user_id": "@a:b", "reason": 1}])
def test_bad_moderation_bodies(users: list[Client], body: dict) -> None:
    alice = users[0]
    room_id = create_room(alice)
    for action in ("invite", "kick", "ban", "unban"):
        response = post(alice, room_id, action, body)
        assert response.status == 400, (action, response)


def test_profile_changes_reach_joined_rooms(users: list[Client]) -> None:
    alice, bob, _ = users
    first = create_room(alice, preset="public_chat")
    second = create_room(alice, preset="public_chat")
    join(bob, first)
    response = alice.put(f"{V3}/profile/{q(alice.user_id)}/displayname", {"displayname": "Alice Renamed"})
    assert response.status == 200, response
    for room_id in (first, second):
        member = get_state(bob if room_id == first else alice, room_id, "m.room.member", alice.user_id).body
        assert member["displayname"] == "Alice Renamed"
        assert member["membership"] == "join"
