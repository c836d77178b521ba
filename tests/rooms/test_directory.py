"""Room aliases and the public room directory."""

from __future__ import annotations

import pytest

from tests.support.client import Client, q
from tests.support.rooms import V3, create_room, join, new_user, put_state
from tests.support.server import RunningServer


@pytest.fixture
def alice(server: RunningServer) -> Client:
    return new_user(server.base_url)


def alias_for(client: Client, name: str) -> str:
    return f"#{name}{client.user_id[5:13]}:test.local"


def test_alias_lifecycle(server: RunningServer, alice: Client) -> None:
    room_id = create_room(alice)
    alias = alias_for(alice, "life")
    assert alice.put(f"{V3}/directory/room/{q(alias)}", {"room_id": room_id}).status == 200
    resolved = new_user(server.base_url).get(f"{V3}/directory/room/{q(alias)}")
    assert resolved.body == {"room_id": room_id, "servers": ["test.local"]}
    again = alice.put(f"{V3}/directory/room/{q(alias)}", {"room_id": room_id})
    assert again.status == 409
    assert alias in alice.get(f"{V3}/rooms/{q(room_id)}/aliases").body["aliases"]
    assert alice.delete(f"{V3}/directory/room/{q(alias)}").status == 200
    gone = alice.get(f"{V3}/directory/room/{q(alias)}")
    assert (gone.status, gone.errcode) == (404, "M_NOT_FOUND")
    assert alice.delete(f"{V3}/directory/room/{q(alias)}").status == 404


def test_alias_permissions(server: RunningServer, alice: Client) -> None:
    bob = new_user(server.base_url)
    room_id = create_room(alice, preset="public_chat")
    alias = alias_for(alice, "perm")
    assert bob.put(f"{V3}/directory/room/{q(alias)}", {"room_id": room_id}).status == 403
    assert alice.put(f"{V3}/directory/room/{q(alias)}", {"room_id": room_id}).status == 200
    join(bob, room_id)
    assert bob.delete(f"{V3}/directory/room/{q(alias)}").status == 403
    own = alias_for(bob, "bobs")
    assert bob.put(f"{V3}/directory/room/{q(own)}", {"room_id": room_id}).status == 200
    assert alice.delete(f"{V3}/directory/room/{q(own)}").status == 200  # room admin may
    outsider = new_user(server.base_url)
    assert outsider.get(f"{V3}/rooms/{q(room_id)}/aliases").status == 403


@pytest.mark.parametrize("alias,status", [
    ("no-hash:test.local", 400), ("#noserver", 400), ("#x:elsewhere.example", 400),
])
def test_bad_aliases(alice: Client, alias: str, status: int) -> None:
    room_id = create_room(alice)
    assert alice.put(f"{V3}/directory/room/{q(alias)}", {"room_id": room_id}).status == status
    assert alice.get(f"{V3}/directory/room/{q(alias)}").status in (400, 404)


def test_alias_for_unknown_or_malformed_room(alice: Client) -> None:
    alias = alias_for(alice, "nowhere")
    assert alice.put(f"{V3}/directory/room/{q(alias)}", {"room_id": "!nope:test.local"}).status == 404
    assert alice.put(f"{V3}/directory/room/{q(alias)}", {"room_id": "nope"}).status == 400
    assert alice.put(f"{V3}/directory/room/{q(alias)}", {}).status == 400


def test_public_rooms_listing_search_and_paging(server: RunningServer, alice: Client) -> None:
    tag = alice.user_id[5:13]
    rooms = [create_room(alice, visibility="public", name=f"Listed {tag} {i}", topic="about things")
             for i in range(3)]
    hidden = create_room(alice, name=f"Hidden {tag}")
    bob = new_user(server.base_url)
    join(bob, rooms[1])
    found = alice.post(f"{V3}/publicRooms", {"filter": {"generic_search_term": tag}}).body
    listed = [entry["room_id"] for entry in found["chunk"]]
    assert set(listed) == set(rooms)
    assert listed[0] == rooms[1]  # most members first
    entry = found["chunk"][0]
    assert entry["num_joined_members"] == 2
    assert entry["join_rule"] == "public"
    assert entry["topic"] == "about things"
    assert hidden not in listed

    first = alice.post(f"{V3}/publicRooms", {"limit": 2, "filter": {"generic_search_term": tag}}).body
    assert len(first["chunk"]) == 2 and "next_batch" in first
    second = alice.post(f"{V3}/publicRooms", {"limit": 2, "since": first["next_batch"],
                                              "filter": {"generic_search_term": tag}}).body
    assert {e["room_id"] for e in first["chunk"] + second["chunk"]} == set(rooms)
    assert Client(server.base_url).get(f"{V3}/publicRooms", params={"limit": 1}).status == 200


def test_directory_visibility_toggle(server: RunningServer, alice: Client) -> None:
    room_id = create_room(alice, name="toggle")
    assert alice.get(f"{V3}/directory/list/room/{q(room_id)}").body == {"visibility": "private"}
    bob = new_user(server.base_url)
    assert bob.put(f"{V3}/directory/list/room/{q(room_id)}", {"visibility": "public"}).status == 403
    assert alice.put(f"{V3}/directory/list/room/{q(room_id)}", {"visibility": "public"}).status == 200
    assert alice.get(f"{V3}/directory/list/room/{q(room_id)}").body == {"visibility": "public"}
    assert alice.put(f"{V3}/directory/list/room/{q(room_id)}", {"visibility": "sideways"}).status == 400
    assert alice.get(f"{V3}/directory/list/room/{q('!unknown:test.local')}").status == 404
    assert alice.get(f"{V3}/directory/list/room/{q('garbage')}").status == 400


@pytest.mark.parametrize("body", [{"limit": "x"}, {"limit": -1}, {"since": 5}, {"since": "zzz"},
                                  {"filter": []}, {"filter": {"generic_search_term": 3}}])
def test_bad_public_rooms_bodies(alice: Client, body: dict) -> None:
    assert alice.post(f"{V3}/publicRooms", body).status == 400


def test_canonical_alias_in_state_must_be_valid(alice: Client) -> None:
    room_id = create_room(alice)
    response = put_state(alice, room_id, "m.room.canonical_alias", {"alt_aliases": ["bad"]})
    assert (response.status, response.errcode) == (400, "M_BAD_ALIAS")


def test_canonical_alias_must_point_to_the_room(alice: Client) -> None:
    room_id = create_room(alice)
    other = create_room(alice)
    alias = alias_for(alice, "canon")
    assert alice.put(f"{V3}/directory/room/{q(alias)}", {"room_id": other}).status == 200
    wrong = put_state(alice, room_id, "m.room.canonical_alias", {"alias": alias})
    assert (wrong.status, wrong.errcode) == (400, "M_BAD_ALIAS")
    missing = put_state(alice, room_id, "m.room.canonical_alias", {"alias": alias_for(alice, "absent")})
    assert (missing.status, missing.errcode) == (400, "M_BAD_ALIAS")
    assert put_state(alice, other, "m.room.canonical_alias", {"alias": alias}).status == 200
