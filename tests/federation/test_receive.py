"""Receiving transactions (PUT /send) from a scripted peer: the spec's checks on each PDU, the
pipeline, gap filling, replays and bad input, against a real server on both engines."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.support.client import Client, q
from tests.support.fed_rooms import PeerRoom, peer_user
from tests.support.federation import ScriptedPeer
from tests.support.rooms import messages, new_user
from tests.support.server import RunningServer
from tests.support.sync import sync, timeline_events

V3 = "/_matrix/client/v3"


@pytest.fixture
def owner(fed_server: RunningServer) -> Client:
    return new_user(fed_server.base_url)


@pytest.fixture
def room(peer: ScriptedPeer, fed_server: RunningServer, owner: Client) -> PeerRoom:
    return PeerRoom.create(peer, fed_server, owner)


def joined(room: PeerRoom, localpart: str | None = None) -> str:
    user = peer_user(room.peer, localpart)
    event = room.join(user)
    assert room.send([event]) == {event.event_id: {}}
    return user


def message(room: PeerRoom, sender: str, body: str, **kwargs: Any) -> Any:
    return room.build(sender, "m.room.message", {"msgtype": "m.text", "body": body}, **kwargs)


def timeline_ids(client: Client, room_id: str) -> list[str]:
    chunk = messages(client, room_id, dir="b", limit="100")["chunk"]
    return [e["event_id"] for e in reversed(chunk)]


def client_event(client: Client, room_id: str, event_id: str) -> Any:
    return client.get(f"{V3}/rooms/{q(room_id)}/event/{q(event_id)}")


def test_join_and_messages_reach_local_users(room: PeerRoom, owner: Client) -> None:
    since = sync(owner)["next_batch"]
    user = joined(room, "visitor")
    first, second = message(room, user, "one"), None
    second = message(room, user, "two")
    assert room.send([first, second]) == {first.event_id: {}, second.event_id: {}}
    members = owner.get(f"{V3}/rooms/{q(room.room_id)}/joined_members").body["joined"]
    assert user in members
    assert timeline_ids(owner, room.room_id)[-2:] == [first.event_id, second.event_id]
    body = sync(owner, since)
    bodies = [e["content"].get("body") for e in timeline_events(body, room.room_id) if e["type"] == "m.room.message"]
    assert bodies == ["one", "two"]


def test_bad_signature_is_dropped(room: PeerRoom, owner: Client) -> None:
    user = joined(room)
    event = message(room, user, "forged", advance=False)
    pdu = copy.deepcopy(event.pdu)
    signatures = pdu["signatures"][room.peer.server_name]
    key_id = next(iter(signatures))
    signatures[key_id] = "A" + signatures[key_id][1:] if signatures[key_id][0] != "A" else "B" + signatures[key_id][1:]
    result = room.send([pdu])
    assert "signature" in result[event.event_id]["error"]
    assert client_event(owner, room.room_id, event.event_id).status == 404


def test_bad_hash_keeps_the_redacted_form(room: PeerRoom, owner: Client) -> None:
    user = joined(room)
    event = message(room, user, "original")
    pdu = copy.deepcopy(event.pdu)
    pdu["content"]["body"] = "tampered"  # the signature covers the redacted form only
    assert room.send([pdu]) == {event.event_id: {}}
    shown = client_event(owner, room.room_id, event.event_id)
    assert shown.status == 200, shown
    assert shown.body["content"] == {}


def test_event_failing_auth_is_rejected_and_so_are_those_citing_it(room: PeerRoom, owner: Client) -> None:
    user = joined(room)
    # A member at the default level (0) may not change the power levels (state_default 50).
    levels = room.fetch(room.state[("m.room.power_levels", "")]).content
    grab = room.build(user, "m.room.power_levels", {**levels, "users": {**levels["users"], user: 100}}, "",
                      advance=False)
    result = room.send([grab])
    assert result[grab.event_id]["error"].startswith("rejected")
    # An event that cites the rejected one among its auth events is rejected too.
    state = {**room.state, ("m.room.power_levels", ""): grab.event_id}
    topic = room.build(user, "m.room.topic", {"topic": "mine"}, "", state=state, advance=False)
    assert room.send([topic])[topic.event_id]["error"].startswith("rejected")
    assert owner.get(f"{V3}/rooms/{q(room.room_id)}/state/m.room.topic/").status == 404
    levels_now = owner.get(f"{V3}/rooms/{q(room.room_id)}/state/m.room.power_levels/").body
    assert user not in levels_now["users"]
    for event in (grab, topic):
        assert client_event(owner, room.room_id, event.event_id).status == 404


def test_soft_failed_event_is_kept_out_of_timeline_and_sync(room: PeerRoom, owner: Client) -> None:
    user = joined(room)
    before_ban = list(room.extremities)
    ban = owner.post(f"{V3}/rooms/{q(room.room_id)}/ban", {"user_id": user})
    assert ban.status == 200, ban
    since = sync(owner)["next_batch"]
    # Built on the state before the ban: it passes there, but not against the current state.
    late = message(room, user, "after the ban", prev=before_ban)
    assert room.send([late]) == {late.event_id: {}}
    assert late.event_id not in timeline_ids(owner, room.room_id)
    assert late.event_id not in [e["event_id"] for e in timeline_events(sync(owner, since), room.room_id)]
    assert client_event(owner, room.room_id, late.event_id).status == 404


def test_missing_prev_events_come_from_get_missing_events(room: PeerRoom, owner: Client) -> None:
    user = joined(room)
    chain = [message(room, user, f"m{i}") for i in range(4)]
    assert room.send([chain[-1]]) == {chain[-1].event_id: {}}
    assert "get_missing_events" in room.asked
    assert timeline_ids(owner, room.room_id)[-4:] == [e.event_id for e in chain]


def test_a_gap_too_large_is_bridged_with_state_ids(room: PeerRoom, owner: Client) -> None:
    user = joined(room)
    chain = [message(room, user, f"m{i}") for i in range(15)]
    last, prev = chain[-1], chain[-2]
    room.state_before[prev.event_id] = dict(room.state)
    room.gme_answer = []  # the peer cannot say what came between
    assert room.send([last]) == {last.event_id: {}}
    assert "state_ids" in room.asked
    ids = timeline_ids(owner, room.room_id)
    assert ids[-1] == last.event_id
    assert prev.event_id not in ids  # held as an outlier, without its state
    assert not set(e.event_id for e in chain[:-1]) & set(ids)


def test_replayed_transaction_gets_the_same_answer_and_writes_nothing(room: PeerRoom, owner: Client) -> None:
    user = joined(room)
    event = message(room, user, "once")
    body = {"origin": room.peer.server_name, "origin_server_ts": 1, "pdus": [event.pdu], "edus": []}
    first = room.send_raw(body, "replay-1")
    assert first.status_code == 200 and first.json() == {"pdus": {event.event_id: {}}}
    other = message(room, user, "not this one", advance=False)
    again = room.send_raw({**body, "pdus": [other.pdu]}, "replay-1")
    assert again.status_code == 200 and again.json() == first.json()
    ids = timeline_ids(owner, room.room_id)
    assert ids.count(event.event_id) == 1
    assert other.event_id not in ids
