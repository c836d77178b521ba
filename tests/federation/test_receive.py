"""Receiving transactions (PUT /send) from a scripted peer: the spec's checks on each PDU, the
pipeline, gap filling, replays and bad input, against a real server on both engines."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from homeserver.events.event import Event
from tests.events.stateres_support import load_json, load_snapshot
from tests.support.client import Client, q
from tests.support.fed_rooms import PeerRoom, peer_user
from tests.support.federation import ScriptedPeer
from tests.support.rooms import messages
from tests.support.server import RunningServer
from tests.support.sync import sync, timeline_events

V3 = "/_matrix/client/v3"


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


def test_a_redaction_that_arrives_before_its_target_applies_when_the_target_arrives(room: PeerRoom,
                                                                                    owner: Client) -> None:
    """The redaction and its target are siblings (neither cites the other): the redaction comes
    first and waits; the target is redacted as it is stored, whether it arrives over /send or as a
    missing prev_event fetched for a later event."""
    user = joined(room)
    fork = list(room.extremities)
    for path in ("send", "gap"):
        target = message(room, user, f"regretted ({path})", prev=fork, advance=False)
        redaction = room.build(user, "m.room.redaction", {}, prev=fork, advance=False, redacts=target.event_id)
        assert room.send([redaction]) == {redaction.event_id: {}}
        assert client_event(owner, room.room_id, target.event_id).status == 404
        if path == "send":
            assert room.send([target]) == {target.event_id: {}}
        else:  # a later event cites it: it comes from /get_missing_events
            later = message(room, user, "later", prev=[target.event_id, redaction.event_id])
            assert room.send([later]) == {later.event_id: {}}
        shown = client_event(owner, room.room_id, target.event_id)
        assert shown.status == 200, shown
        assert shown.body["content"] == {}, path
        assert shown.body["unsigned"]["redacted_because"]["event_id"] == redaction.event_id
        fork = list(room.extremities) if path == "send" else [later.event_id]


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


def test_fork_is_merged_by_state_resolution(peer: ScriptedPeer, fed_server: RunningServer, owner: Client) -> None:
    """ruma's power_levels_admin_vs_mod scenario over the wire: the fixture's alice (admin) and bob
    (moderator) are the peer's users, and the room's creator, ours, keeps level 100 throughout."""
    alice, bob = peer_user(peer, "alice"), peer_user(peer, "bob")
    users = {"@alice:example.com": alice, "@bob:example.com": bob}
    room = PeerRoom.create(peer, fed_server, owner,
                           power_level_content_override={"users": {owner.user_id: 100, alice: 100}})
    ours: dict[str, Any] = {}

    def mirror(fixture: dict[str, Any], prev: list[str]) -> Any:
        content = json_map(fixture["content"], users)
        if fixture["type"] == "m.room.power_levels":
            content["users"][owner.user_id] = 100
        state_key = users.get(fixture["state_key"], fixture["state_key"])
        before = dict(room.state_at[prev[0]]) if prev[0] in room.state_at else dict(room.state)
        event = room.build(users[fixture["sender"]], fixture["type"], content, state_key, prev=prev, state=before)
        room.state_at[event.event_id] = {**before, (fixture["type"], state_key): event.event_id}
        ours[fixture["event_id"]] = event
        return event

    bootstrap = {e["event_id"]: e for e in load_json("bootstrap-public-chat.json")}
    for fixture_id in ("$00-m-room-member-join-alice", "$00-m-room-member-join-bob", "$01-m-room-power_levels"):
        event = mirror(bootstrap[fixture_id], room.extremities)
        assert room.send([event]) == {event.event_id: {}}
    base = ours["$01-m-room-power_levels"].event_id
    # bob's change first, then alice's, each on $01: both pass on arrival, so the room forks.
    for name in ("power-levels-admin-vs-mod-bob.json", "power-levels-admin-vs-mod-alice.json"):
        (fixture,) = load_json(name)
        event = mirror(fixture, [base])
        assert room.send([event]) == {event.event_id: {}}
    for fixture_id in ("$02-m-room-power_levels-bob", "$02-m-room-power_levels-alice"):
        # Neither was soft-failed: both are in the room's DAG as forward extremities.
        assert client_event(owner, room.room_id, ours[fixture_id].event_id).status == 200
    expected = load_snapshot("power_levels_admin_vs_mod")
    state = owner.get(f"{V3}/rooms/{q(room.room_id)}/state").body
    resolved = {(e["type"], e["state_key"]): e["event_id"] for e in state}
    for (event_type, state_key), fixture_id in expected.items():
        if fixture_id in ours:
            assert resolved[(event_type, users.get(state_key, state_key))] == ours[fixture_id].event_id
    assert resolved[("m.room.power_levels", "")] == ours["$02-m-room-power_levels-alice"].event_id
    # A merge event on both branches is accepted, on the resolved state.
    room.state = {k: v for k, v in resolved.items()}
    merge = message(room, alice, "merged", prev=[ours["$02-m-room-power_levels-bob"].event_id,
                                                 ours["$02-m-room-power_levels-alice"].event_id])
    assert room.send([merge]) == {merge.event_id: {}}
    assert timeline_ids(owner, room.room_id)[-1] == merge.event_id


def json_map(value: Any, names: dict[str, str]) -> Any:
    """The fixture's JSON with its user IDs replaced (keys and values)."""
    if isinstance(value, dict):
        return {names.get(k, k): json_map(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [json_map(v, names) for v in value]
    return names.get(value, value) if isinstance(value, str) else value


@pytest.mark.parametrize("raw, errcode", [
    (b"{not json", "M_NOT_JSON"),
    (b"[]", "M_BAD_JSON"),
    (b'{"pdus": {}}', "M_BAD_JSON"),
    (b'{"pdus": [], "edus": "x"}', "M_BAD_JSON"),
    (b'{"pdus": [], "origin_server_ts": "soon"}', "M_BAD_JSON"),
])
def test_malformed_transactions(room: PeerRoom, raw: bytes, errcode: str) -> None:
    import json as json_module

    body = json_module.loads(raw) if errcode != "M_NOT_JSON" else None
    uri = "/_matrix/federation/v1/send/bad-body"
    header = room.peer.authorization("PUT", uri, room.server.server_name, body)
    response = room.peer.request("PUT", room.server, uri, raw_body=raw, authorization=header)
    assert response.status_code == 400, response.text
    assert response.json()["errcode"] == errcode


def test_too_many_pdus_or_edus(room: PeerRoom) -> None:
    user = joined(room)
    pdus = [message(room, user, f"n{i}", advance=False).pdu for i in range(51)]
    response = room.send_raw({"origin": room.peer.server_name, "origin_server_ts": 1, "pdus": pdus})
    assert (response.status_code, response.json()["errcode"]) == (400, "M_BAD_JSON")
    edus = [{"edu_type": "m.typing", "content": {}}] * 101
    response = room.send_raw({"origin": room.peer.server_name, "origin_server_ts": 1, "pdus": [], "edus": edus})
    assert (response.status_code, response.json()["errcode"]) == (400, "M_BAD_JSON")


def test_unsigned_transaction_is_unauthorized(room: PeerRoom) -> None:
    response = room.peer.request("PUT", room.server, "/_matrix/federation/v1/send/x", {"pdus": []},
                                 authorization=False)
    assert (response.status_code, response.json()["errcode"]) == (401, "M_UNAUTHORIZED")


def test_bad_pdus_get_errors_never_a_500(room: PeerRoom, owner: Client) -> None:
    user = joined(room)
    oversized = message(room, user, "x" * 70_000, advance=False)
    malformed = message(room, user, "m", advance=False)
    broken = dict(malformed.pdu, depth="deep")
    broken_id = Event.from_pdu(broken, room.room_version).event_id
    elsewhere = PeerRoom(room.peer, room.server, "!nowhere:" + room.peer.server_name, room.room_version)
    # A room we do not know:
    unknown = elsewhere.build(user, "m.room.message", {"body": "?"}, prev=["$whatever"], auth=[], depth=3)
    result = room.send([oversized, broken, "not an object", {"room_id": 7}, unknown])
    assert "65536" in result[oversized.event_id]["error"]
    assert "malformed" in result[broken_id]["error"]
    assert unknown.event_id not in result  # a room we do not know: dropped, as Synapse does
    assert client_event(owner, room.room_id, oversized.event_id).status == 404


def test_pdus_for_a_room_we_left(room: PeerRoom, owner: Client) -> None:
    user = joined(room)
    assert owner.post(f"{V3}/rooms/{q(room.room_id)}/leave", {}).status == 200
    late = message(room, user, "anyone there?")
    assert room.send([late]) == {late.event_id: {"error": "This server is not in the room"}}
