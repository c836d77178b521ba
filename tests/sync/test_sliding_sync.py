"""Simplified sliding sync (MSC4186) over HTTP: lists by recency, subscriptions, required_state,
positions that survive restarts, long-polling, and the extensions."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.support.client import Client, q
from tests.support.e2ee import setup_device
from tests.support.rooms import V3, create_room, invite, join, new_user, send_message
from tests.support.server import RunningServer

PATH = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"


def sliding(client: Client, body: dict[str, Any], pos: str | None = None, timeout: int = 0,
            expect: int = 200) -> dict[str, Any]:
    params: dict[str, Any] = {"timeout": timeout}
    if pos is not None:
        params["pos"] = pos
    response = client.post(PATH, body, params=params)
    assert response.status == expect, response
    return response.body


def recent(start: int = 0, end: int = 19, timeline_limit: int = 1, **extra: Any) -> dict[str, Any]:
    return {"lists": {"all": {"ranges": [[start, end]], "timeline_limit": timeline_limit,
                              "required_state": [["m.room.name", ""]], **extra}}}


def bodies(room: dict[str, Any]) -> list[str]:
    return [e["content"].get("body") for e in room["timeline"] if e["type"] == "m.room.message"]


def test_advertised(server: RunningServer) -> None:
    features = Client(server.base_url).get("/_matrix/client/versions").body["unstable_features"]
    assert features.get("org.matrix.simplified_msc3575") is True


def test_a_window_of_recent_rooms_follows_new_messages(server: RunningServer) -> None:
    alice = new_user(server.base_url)
    rooms = [create_room(alice, name=f"room {i}") for i in range(100)]
    for i, room in enumerate(rooms):
        send_message(alice, room, f"last in {i}")
    first = sliding(alice, recent())
    assert first["lists"]["all"]["count"] == 100
    newest = list(reversed(rooms))[:20]
    assert set(first["rooms"]) == set(newest)
    stamps = {room: first["rooms"][room]["bump_stamp"] for room in newest}
    assert sorted(newest, key=lambda r: -stamps[r]) == newest
    top = first["rooms"][rooms[-1]]
    assert top["initial"] is True and bodies(top) == ["last in 99"] and len(top["timeline"]) == 1
    assert top["name"] == "room 99" and top["num_live"] == 0
    assert [e["type"] for e in top["required_state"]] == ["m.room.name"]
    assert top["limited"] is True and isinstance(top["prev_batch"], str)
    # A message in a room already in the window: an incremental update.
    send_message(alice, rooms[85], "news in 85")
    second = sliding(alice, recent(), pos=first["pos"])
    assert list(second["rooms"]) == [rooms[85]]
    update = second["rooms"][rooms[85]]
    assert update["initial"] is False and bodies(update) == ["news in 85"] and update["num_live"] == 1
    # A message in a room outside the window brings it in, as a room new to the connection.
    send_message(alice, rooms[0], "news in 0")
    third = sliding(alice, recent(), pos=second["pos"])
    assert list(third["rooms"]) == [rooms[0]]
    entering = third["rooms"][rooms[0]]
    assert entering["initial"] is True and bodies(entering) == ["news in 0"] and entering["num_live"] == 1
    assert entering["bump_stamp"] > update["bump_stamp"]
    # Nothing new: an empty answer, with a fresh pos.
    quiet = sliding(alice, recent(), pos=third["pos"])
    assert quiet["rooms"] == {} and quiet["pos"] != third["pos"]


def test_required_state_is_the_state_at_the_end_of_the_timeline(server: RunningServer) -> None:
    """A state event in the timeline is in required_state too (MSC4186; matrix-js-sdk and
    matrix-rust-sdk read a room's name from required_state alone)."""
    alice = new_user(server.base_url)
    room = create_room(alice, name="first name")
    rules = {"lists": {"all": {"ranges": [[0, 0]], "timeline_limit": 1,
                               "required_state": [["m.room.name", ""], ["m.room.topic", ""]]}}}
    first = sliding(alice, rules)["rooms"][room]
    assert [e["content"]["name"] for e in first["required_state"] if e["type"] == "m.room.name"] == ["first name"]
    assert alice.put(f"{V3}/rooms/{q(room)}/state/m.room.topic/", {"topic": "news"}).status == 200
    again = sliding(alice, rules)["rooms"][room]
    assert [e["content"] for e in again["required_state"] if e["type"] == "m.room.topic"] == [{"topic": "news"}]
    # Incrementally, the change arrives in both the timeline and required_state.
    pos = sliding(alice, rules)["pos"]
    assert alice.put(f"{V3}/rooms/{q(room)}/state/m.room.name/", {"name": "second name"}).status == 200
    update = sliding(alice, rules, pos=pos)["rooms"][room]
    assert update["initial"] is False and update["name"] == "second name"
    assert [e["content"]["name"] for e in update["required_state"]] == ["second name"]


def test_long_poll_wakes_on_a_message(server: RunningServer) -> None:
    alice, bob = new_user(server.base_url), new_user(server.base_url)
    room = create_room(alice, preset="public_chat")
    join(bob, room)
    first = sliding(alice, recent())
    result: dict[str, Any] = {}
    waiting = threading.Thread(target=lambda: result.update(sliding(alice, recent(), pos=first["pos"],
                                                                     timeout=30_000)))
    waiting.start()
    send_message(bob, room, "wake up")
    waiting.join(60)
    assert not waiting.is_alive()
    assert bodies(result["rooms"][room]) == ["wake up"]


def test_positions_survive_a_restart_and_unknown_ones_are_refused(server: RunningServer) -> None:
    alice = new_user(server.base_url)
    room = create_room(alice)
    first = sliding(alice, recent())
    server.restart()
    send_message(alice, room, "after restart")
    again = sliding(alice, recent(), pos=first["pos"])
    assert again["rooms"][room]["initial"] is False and bodies(again["rooms"][room]) == ["after restart"]
    bogus = sliding(alice, recent(), pos="nonsense", expect=400)
    assert bogus["errcode"] == "M_UNKNOWN_POS"
    other_conn = sliding(alice, {**recent(), "conn_id": "other"}, pos=first["pos"], expect=400)
    assert other_conn["errcode"] == "M_UNKNOWN_POS"
    bob = new_user(server.base_url)
    not_yours = sliding(bob, recent(), pos=first["pos"], expect=400)
    assert not_yours["errcode"] == "M_UNKNOWN_POS"


def test_subscriptions_required_state_and_invites(server: RunningServer) -> None:
    alice, bob, carol = (new_user(server.base_url) for _ in range(3))
    old = create_room(alice, preset="public_chat", name="old", topic="subscribed")
    join(bob, old)
    join(carol, old)
    send_message(bob, old, "bob speaks")
    for i in range(3):
        send_message(alice, create_room(alice), f"newer {i}")
    invited = create_room(carol, name="an invitation")
    invite(carol, invited, alice.user_id or "")
    body = {**recent(0, 1), "room_subscriptions": {old: {"timeline_limit": 1, "required_state": [
        ["m.room.member", "$LAZY"], ["m.room.member", "$ME"], ["m.room.topic", ""]]}}}
    response = sliding(alice, body)
    assert invited in response["rooms"]
    invitation = response["rooms"][invited]
    assert {e["type"] for e in invitation["invite_state"]} >= {"m.room.create", "m.room.member"}
    sub = response["rooms"][old]
    members = {e["state_key"] for e in sub["required_state"] if e["type"] == "m.room.member"}
    assert members == {bob.user_id, alice.user_id}
    assert any(e["type"] == "m.room.topic" for e in sub["required_state"])
    assert sub["joined_count"] == 3 and bodies(sub) == ["bob speaks"]
    assert response["lists"]["all"]["count"] == 5
    invites_only = sliding(alice, {"lists": {"inv": {"ranges": [[0, 9]], "filters": {"is_invite": True}}}})
    assert list(invites_only["rooms"]) == [invited] and invites_only["lists"]["inv"]["count"] == 1


def test_extensions_deliver_what_sync_would(server: RunningServer) -> None:
    alice, bob = new_user(server.base_url), new_user(server.base_url)
    room = create_room(alice, preset="public_chat")
    join(bob, room)
    setup_device(alice, otk_count=3)
    extensions = {name: {"enabled": True} for name in ("to_device", "e2ee", "account_data", "receipts", "typing")}
    body = {**recent(), "extensions": extensions}
    first = sliding(alice, body)
    ext = first["extensions"]
    assert ext["e2ee"]["device_one_time_keys_count"].get("signed_curve25519") == 3
    assert isinstance(ext["to_device"]["next_batch"], str)
    message = send_message(bob, room, "read me")
    assert bob.put(f"{V3}/sendToDevice/m.test/t1", {"messages": {alice.user_id: {alice.device_id: {"n": 1}}}}
                   ).status == 200
    assert alice.put(f"{V3}/user/{q(alice.user_id or '')}/account_data/m.test.global", {"x": 1}).status == 200
    assert bob.post(f"{V3}/rooms/{q(room)}/receipt/m.read/{q(message)}", {}).status == 200
    assert bob.put(f"{V3}/rooms/{q(room)}/typing/{q(bob.user_id or '')}", {"typing": True, "timeout": 30000}
                   ).status == 200
    setup_device(bob)
    second = sliding(alice, {**body, "extensions": {**extensions, "to_device": {
        "enabled": True, "since": ext["to_device"]["next_batch"]}}}, pos=first["pos"])
    ext = second["extensions"]
    assert [e["content"] for e in ext["to_device"]["events"]] == [{"n": 1}]
    assert ext["to_device"]["events"][0]["sender"] == bob.user_id
    assert bob.user_id in ext["e2ee"]["device_lists"]["changed"]
    assert any(e["type"] == "m.test.global" for e in ext["account_data"]["global"])
    receipt = ext["receipts"]["rooms"][room]
    assert receipt["type"] == "m.receipt" and bob.user_id in receipt["content"][message]["m.read"]
    assert bob.user_id in ext["typing"]["rooms"][room]["content"]["user_ids"]
    # The to-device message is acknowledged by the next request and not sent again.
    third = sliding(alice, {**body, "extensions": {**extensions, "to_device": {
        "enabled": True, "since": ext["to_device"]["next_batch"]}}}, pos=second["pos"])
    assert third["extensions"]["to_device"]["events"] == []


def test_to_device_is_not_acknowledged_unseen(server: RunningServer) -> None:
    alice, bob = new_user(server.base_url), new_user(server.base_url)
    first = sliding(alice, recent())
    assert bob.put(f"{V3}/sendToDevice/m.test/t2", {"messages": {alice.user_id: {alice.device_id: {"n": 2}}}}
                   ).status == 200
    second = sliding(alice, recent(), pos=first["pos"])
    third = sliding(alice, {**recent(), "extensions": {"to_device": {"enabled": True}}}, pos=second["pos"])
    assert [e["content"] for e in third["extensions"]["to_device"]["events"]] == [{"n": 2}]


@pytest.mark.parametrize("body", [
    {"lists": []}, {"lists": {"a": []}}, {"lists": {"a": {"ranges": "0-10"}}},
    {"lists": {"a": {"ranges": [[0, -1]]}}}, {"lists": {"a": {"timeline_limit": "5"}}},
    {"lists": {"a": {"required_state": [["m.room.name"]]}}}, {"room_subscriptions": []},
    {"extensions": []}, {"extensions": {"to_device": {"enabled": "yes"}}},
    {"extensions": {"to_device": {"enabled": True, "since": 5}}}, {"conn_id": 5},
    {"lists": {"a": {"filters": {"is_invite": "no"}}}},
])
def test_bad_bodies(server: RunningServer, body: dict[str, Any]) -> None:
    alice = new_user(server.base_url)
    response = alice.post(PATH, body)
    assert (response.status, response.errcode) == (400, "M_BAD_JSON"), response
    not_json = alice.post(PATH, raw=b"[1")
    assert (not_json.status, not_json.errcode) == (400, "M_NOT_JSON")
    anonymous = Client(server.base_url).post(PATH, {})
    assert (anonymous.status, anonymous.errcode) == (401, "M_MISSING_TOKEN")
