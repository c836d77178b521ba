"""Two Vignette servers sharing rooms over HTTPS on loopback (issue 13's "Tests", issue 14's
joins): a user on each, a room on one joined from the other by alias and by room ID, then
messages, typing and read receipts in both directions, each seen through the other's /sync."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from tests.support.client import Client, q
from tests.support.fed_pair import Pair
from tests.support.federation_rooms import (
    receipt_readers,
    sync_token,
    sync_until,
    timeline_bodies,
    typing_user_ids,
)
from tests.support.rooms import (
    V3,
    create_room,
    get_state,
    joined_members,
    new_user,
    put_state,
    send_message,
)
from tests.support.server import RunningServer


@attrs.define
class RoomPair:
    a: RunningServer
    b: RunningServer
    alice: Client  # on A, owns the room
    bob: Client  # on B
    room_id: str
    alias: str


@pytest.fixture(scope="module")
def pair(pair: Pair) -> RoomPair:
    """The two servers of the shared ``pair`` fixture, with a public room on A that has an alias."""
    alice, bob = new_user(pair.a.base_url), new_user(pair.b.base_url)
    local = f"lobby{alice.user_id[2:8]}"
    room_id = create_room(alice, preset="public_chat", room_alias_name=local)
    return RoomPair(pair.a, pair.b, alice, bob, room_id, f"#{local}:{pair.a.server_name}")


def test_join_by_alias_from_the_other_server(pair: RoomPair) -> None:
    response = pair.bob.post(f"{V3}/join/{q(pair.alias)}", {})
    assert response.status == 200, (response, pair.b.output()[-3000:])
    assert response.body == {"room_id": pair.room_id}
    assert joined_members(pair.alice, pair.room_id) == {pair.alice.user_id, pair.bob.user_id}
    assert joined_members(pair.bob, pair.room_id) == {pair.alice.user_id, pair.bob.user_id}


def test_join_by_room_id_with_via(pair: RoomPair) -> None:
    carol = new_user(pair.b.base_url)
    response = carol.post(f"{V3}/rooms/{q(pair.room_id)}/join", {}, params={"via": pair.a.server_name})
    assert response.status == 200, response
    # B is already in the room now, so the next join is local to B and reaches A over /send.
    dave = new_user(pair.b.base_url)
    assert dave.post(f"{V3}/join/{q(pair.room_id)}", {}).status == 200
    sync_until(pair.alice, lambda body: dave.user_id in joined_members(pair.alice, pair.room_id))
    assert {carol.user_id, dave.user_id} <= joined_members(pair.alice, pair.room_id)


def test_messages_both_ways(pair: RoomPair) -> None:
    since_b = sync_token(pair.bob)
    send_message(pair.alice, pair.room_id, "hello from A")
    sync_until(pair.bob, lambda body: "hello from A" in timeline_bodies(body, pair.room_id), since_b)
    since_a = sync_token(pair.alice)
    send_message(pair.bob, pair.room_id, "hello from B")
    sync_until(pair.alice, lambda body: "hello from B" in timeline_bodies(body, pair.room_id), since_a)


def set_typing(client: Client, room_id: str, typing: bool = True) -> None:
    body = {"typing": typing, "timeout": 30000} if typing else {"typing": False}
    response = client.put(f"{V3}/rooms/{q(room_id)}/typing/{q(str(client.user_id))}", body)
    assert response.status == 200, response


def test_typing_both_ways(pair: RoomPair) -> None:
    for writer, reader in ((pair.alice, pair.bob), (pair.bob, pair.alice)):
        since = sync_token(reader)
        set_typing(writer, pair.room_id)
        sync_until(reader, lambda body, w=writer: str(w.user_id) in typing_user_ids(body, pair.room_id), since)
        set_typing(writer, pair.room_id, False)


def test_read_receipts_both_ways(pair: RoomPair) -> None:
    for writer, reader in ((pair.alice, pair.bob), (pair.bob, pair.alice)):
        since = sync_token(writer)
        event_id = send_message(reader, pair.room_id, f"read me, {writer.user_id}")
        sync_until(writer, lambda body, e=event_id: e in [x["event_id"] for x in _timeline(body, pair.room_id)],
                   since)
        since_reader = sync_token(reader)
        response = writer.post(f"{V3}/rooms/{q(pair.room_id)}/receipt/m.read/{q(event_id)}", {})
        assert response.status == 200, response
        sync_until(reader, lambda body, e=event_id, w=writer: str(w.user_id) in receipt_readers(body, pair.room_id, e),
                   since_reader)


def _timeline(body: dict[str, Any], room_id: str) -> list[dict[str, Any]]:
    room = body.get("rooms", {}).get("join", {}).get(room_id)
    return room["timeline"]["events"] if room else []


def test_a_restricted_room_on_a_is_joined_from_b_through_an_allowed_room(pair: RoomPair) -> None:
    space = create_room(pair.alice, preset="public_chat")
    room_id = create_room(pair.alice, preset="private_chat")
    rules = {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": space}]}
    assert put_state(pair.alice, room_id, "m.room.join_rules", rules).status == 200
    erin = new_user(pair.b.base_url)
    refused = erin.post(f"{V3}/join/{q(room_id)}", {}, params={"via": pair.a.server_name})
    assert (refused.status, refused.errcode) == (403, "M_FORBIDDEN")
    assert erin.post(f"{V3}/join/{q(space)}", {}, params={"via": pair.a.server_name}).status == 200
    response = erin.post(f"{V3}/join/{q(room_id)}", {}, params={"via": pair.a.server_name})
    assert response.status == 200, response
    member = get_state(erin, room_id, "m.room.member", str(erin.user_id)).body
    assert member["join_authorised_via_users_server"] == pair.alice.user_id
    assert erin.user_id in joined_members(pair.alice, room_id)


def redact(client: Client, room_id: str, event_id: str) -> None:
    response = client.put(f"{V3}/rooms/{q(room_id)}/redact/{q(event_id)}/r{event_id[1:9]}", {"reason": "oops"})
    assert response.status == 200, response


def content_of(client: Client, room_id: str, event_id: str) -> dict[str, Any]:
    response = client.get(f"{V3}/rooms/{q(room_id)}/event/{q(event_id)}")
    assert response.status == 200, response
    return dict(response.body["content"])


def test_redactions_from_the_other_server_take_effect(pair: RoomPair) -> None:
    """Bob (on B) redacts his own message: it shares his server. Alice (on A, the room's admin)
    redacts Bob's: she has the redact level. Both redactions arrive over /send and apply there."""
    if pair.bob.user_id not in joined_members(pair.alice, pair.room_id):
        assert pair.bob.post(f"{V3}/join/{q(pair.room_id)}", {}, params={"server_name": pair.a.server_name}).status == 200
    since_a, since_b = sync_token(pair.alice), sync_token(pair.bob)
    own = send_message(pair.bob, pair.room_id, "bob takes this back")
    other = send_message(pair.bob, pair.room_id, "alice removes this")
    sync_until(pair.alice, lambda body: "alice removes this" in timeline_bodies(body, pair.room_id), since_a)
    redact(pair.bob, pair.room_id, own)
    redact(pair.alice, pair.room_id, other)
    sync_until(pair.alice, lambda _body: content_of(pair.alice, pair.room_id, own) == {})
    sync_until(pair.bob, lambda _body: content_of(pair.bob, pair.room_id, other) == {}, since_b)
    assert content_of(pair.bob, pair.room_id, own) == {} and content_of(pair.alice, pair.room_id, other) == {}
