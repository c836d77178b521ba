"""/sync: initial and incremental shape, long-poll wake-up, summary, bad input."""

from __future__ import annotations

import threading

import pytest

from tests.support.client import Client, register_user
from tests.support.server import RunningServer
from tests.support.sync import (
    create_room,
    invite,
    joined_room,
    leave,
    send_text,
    shared_room,
    sync,
    sync_until,
    timeline_events,
)


def test_initial_sync_has_the_room_its_state_and_timeline(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    room_id = create_room(alice, name="Kitchen")
    event_id = send_text(alice, room_id, "hello")
    body = sync(alice)
    room = joined_room(body, room_id)
    assert room is not None
    types = {e["type"] for e in room["state"]["events"]} | {e["type"] for e in room["timeline"]["events"]}
    assert {"m.room.create", "m.room.member", "m.room.name"} <= types
    assert room["timeline"]["events"][-1]["event_id"] == event_id
    assert room["summary"]["m.joined_member_count"] == 1
    assert isinstance(body["next_batch"], str)


def test_incremental_sync_returns_only_what_is_new(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    room_id = create_room(alice)
    since = sync(alice)["next_batch"]
    first = send_text(alice, room_id, "one")
    body = sync(alice, since)
    assert [e["event_id"] for e in timeline_events(body, room_id)] == [first]
    assert joined_room(body, room_id)["state"]["events"] == []
    again = sync(alice, body["next_batch"])
    assert timeline_events(again, room_id) == []


def test_long_poll_wakes_when_a_message_arrives(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    room_id = shared_room(alice, bob)
    since = sync(bob)["next_batch"]
    result: dict[str, object] = {}

    def poll() -> None:
        result["body"] = sync(bob, since, timeout=20_000)

    thread = threading.Thread(target=poll)
    thread.start()
    event_id = send_text(alice, room_id, "wake up")
    thread.join(30)
    assert not thread.is_alive()
    body = result["body"]
    assert isinstance(body, dict)
    assert event_id in [e["event_id"] for e in timeline_events(body, room_id)]


def test_long_poll_times_out_empty_with_a_usable_token(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    create_room(alice)
    since = sync(alice)["next_batch"]
    body = sync(alice, since, timeout=300)
    assert body.get("rooms", {}).get("join", {}) == {} or all(
        not r["timeline"]["events"] for r in body["rooms"]["join"].values())
    assert sync(alice, body["next_batch"])["next_batch"]


def test_invite_then_join_then_leave_sections(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    room_id = create_room(alice, name="Porch")
    since = sync(bob)["next_batch"]
    invite(alice, room_id, str(bob.user_id))
    body, since = sync_until(bob, since, lambda b: room_id in b.get("rooms", {}).get("invite", {}))
    invite_state = body["rooms"]["invite"][room_id]["invite_state"]["events"]
    assert any(e["type"] == "m.room.member" and e["state_key"] == bob.user_id for e in invite_state)
    assert any(e["type"] == "m.room.name" for e in invite_state)
    bob.post(f"/_matrix/client/v3/join/{room_id}", {})
    body, since = sync_until(bob, since, lambda b: joined_room(b, room_id) is not None)
    state_types = {e["type"] for e in joined_room(body, room_id)["state"]["events"]}
    assert "m.room.create" in state_types | {e["type"] for e in timeline_events(body, room_id)}
    assert joined_room(body, room_id)["summary"]["m.joined_member_count"] == 2
    leave(bob, room_id)
    body, since = sync_until(bob, since, lambda b: room_id in b.get("rooms", {}).get("leave", {}))
    left = body["rooms"]["leave"][room_id]["timeline"]["events"]
    assert left[-1]["type"] == "m.room.member" and left[-1]["content"]["membership"] == "leave"


def test_summary_heroes_name_the_other_members(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    room_id = shared_room(alice, bob)
    summary = joined_room(sync(alice), room_id)["summary"]
    assert summary["m.heroes"] == [bob.user_id]
    assert summary["m.joined_member_count"] == 2
    assert summary["m.invited_member_count"] == 0


def test_unread_count_follows_the_read_receipt(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    room_id = shared_room(alice, bob)
    send_text(alice, room_id, "one")
    second = send_text(alice, room_id, "two")
    send_text(bob, room_id, "my own message does not count")
    counts = joined_room(sync(bob), room_id)["unread_notifications"]
    assert counts["notification_count"] == 2
    response = bob.post(f"/_matrix/client/v3/rooms/{room_id}/receipt/m.read/{second}", {})
    assert response.status == 200, response
    send_text(alice, room_id, "three")
    counts = joined_room(sync(bob), room_id)["unread_notifications"]
    assert counts["notification_count"] == 1


@pytest.mark.parametrize("params", [
    {"since": "not a token"}, {"since": "events.x"}, {"timeout": "soon"}, {"timeout": "-5"},
    {"full_state": "maybe"}, {"set_presence": "dancing"}, {"filter": "{not json"},
    {"filter": "[1, 2]"}, {"filter": "99999"}, {"filter": '{"room": {"timeline": {"limit": "ten"}}}'},
])
def test_bad_parameters_are_400s(server: RunningServer, params: dict[str, str]) -> None:
    alice = register_user(server.base_url)
    response = alice.get("/_matrix/client/v3/sync", params=params)
    assert response.status == 400, response
    assert response.errcode in ("M_INVALID_PARAM", "M_BAD_JSON", "M_NOT_JSON"), response


def test_sync_needs_a_token(server: RunningServer) -> None:
    response = Client(server.base_url).get("/_matrix/client/v3/sync")
    assert response.status == 401
    assert response.errcode == "M_MISSING_TOKEN"


def test_full_state_resends_the_state(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    room_id = create_room(alice, name="Attic")
    since = sync(alice)["next_batch"]
    send_text(alice, room_id, "hi")
    body = sync(alice, since, full_state="true")
    assert "m.room.name" in {e["type"] for e in joined_room(body, room_id)["state"]["events"]}
