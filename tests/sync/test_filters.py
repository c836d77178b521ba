"""Saved and inline filters cut the sync response as asked."""

from __future__ import annotations

import pytest

from tests.support.client import register_user
from tests.support.server import RunningServer
from tests.support.sync import (
    create_room,
    joined_room,
    send_text,
    shared_room,
    sync,
    timeline_events,
)


def filter_path(user_id: str, filter_id: str | None = None) -> str:
    path = f"/_matrix/client/v3/user/{user_id}/filter"
    return path if filter_id is None else f"{path}/{filter_id}"


def test_saved_filter_round_trips_and_is_private(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    wanted = {"room": {"timeline": {"limit": 3, "types": ["m.room.message"]}}}
    response = alice.post(filter_path(alice.user_id), wanted)
    assert response.status == 200, response
    filter_id = response.body["filter_id"]
    assert isinstance(filter_id, str)
    assert alice.get(filter_path(alice.user_id, filter_id)).body == wanted
    assert alice.post(filter_path(alice.user_id), wanted).body["filter_id"] == filter_id
    assert bob.get(filter_path(alice.user_id, filter_id)).status == 403
    assert alice.get(filter_path(alice.user_id, "12345")).status == 404
    assert alice.get(filter_path(alice.user_id, "abc")).status == 404
    assert bob.post(filter_path(alice.user_id), wanted).status == 403


@pytest.mark.parametrize("body", [
    {"room": "all"}, {"room": {"timeline": {"types": "m.room.message"}}},
    {"room": {"timeline": {"limit": -1}}}, {"presence": {"senders": [1]}},
    {"event_format": "xml"}, {"room": {"state": {"lazy_load_members": "yes"}}},
    {"room": {"include_leave": 1}},
])
def test_malformed_filters_are_rejected(server: RunningServer, body: dict) -> None:
    alice = register_user(server.base_url)
    response = alice.post(filter_path(alice.user_id), body)
    assert response.status == 400 and response.errcode == "M_BAD_JSON", response


def test_filter_body_must_be_an_object(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    assert alice.request("POST", filter_path(alice.user_id), raw=b"[]").status == 400
    assert alice.request("POST", filter_path(alice.user_id), raw=b"{").status == 400


def test_saved_filter_id_limits_the_timeline(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    room_id = create_room(alice)
    sent = [send_text(alice, room_id, f"m{n}") for n in range(5)]
    filter_id = alice.post(filter_path(alice.user_id),
                           {"room": {"timeline": {"limit": 2}}}).body["filter_id"]
    timeline = joined_room(sync(alice, sync_filter=filter_id), room_id)["timeline"]
    assert [e["event_id"] for e in timeline["events"]] == sent[-2:]
    assert timeline["limited"] is True


def test_types_and_rooms_filters(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    kept = create_room(alice)
    dropped = create_room(alice)
    send_text(alice, kept, "hello")
    alice.put(f"/_matrix/client/v3/rooms/{kept}/state/m.room.topic/", {"topic": "t"})
    # Ephemeral news of a filtered-out room must not bring the room back in.
    alice.put(f"/_matrix/client/v3/rooms/{dropped}/typing/{alice.user_id}", {"typing": True})
    alice.post(f"/_matrix/client/v3/rooms/{dropped}/receipt/m.read/{send_text(alice, dropped, 'x')}", {})
    body = sync(alice, sync_filter={"room": {"rooms": [kept], "timeline": {"types": ["m.room.message"]}}})
    assert joined_room(body, dropped) is None
    assert {e["type"] for e in timeline_events(body, kept)} == {"m.room.message"}


def test_not_senders_and_state_types(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    room_id = shared_room(alice, bob)
    since = sync(alice)["next_batch"]
    send_text(bob, room_id, "from bob")
    mine = send_text(alice, room_id, "from alice")
    body = sync(alice, since, sync_filter={"room": {"timeline": {"not_senders": [bob.user_id]}}})
    assert [e["event_id"] for e in timeline_events(body, room_id)] == [mine]
    body = sync(alice, sync_filter={"room": {"state": {"types": ["m.room.create"]},
                                             "timeline": {"limit": 1}}})
    assert {e["type"] for e in joined_room(body, room_id)["state"]["events"]} == {"m.room.create"}


def test_lazy_loading_members_sends_only_timeline_senders(server: RunningServer) -> None:
    alice, bob, carol = (register_user(server.base_url) for _ in range(3))
    room_id = shared_room(alice, bob, carol)
    send_text(bob, room_id, "only bob speaks")
    lazy = {"room": {"state": {"lazy_load_members": True}, "timeline": {"limit": 1}}}
    members = {e["state_key"] for e in joined_room(sync(alice, sync_filter=lazy), room_id)["state"]["events"]
               if e["type"] == "m.room.member"}
    assert bob.user_id in members
    assert carol.user_id not in members
    eager = {"room": {"timeline": {"limit": 1}}}
    members = {e["state_key"] for e in joined_room(sync(alice, sync_filter=eager), room_id)["state"]["events"]
               if e["type"] == "m.room.member"}
    assert {alice.user_id, bob.user_id, carol.user_id} <= members


def test_event_fields_and_empty_presence(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    room_id = create_room(alice)
    send_text(alice, room_id, "trimmed")
    body = sync(alice, sync_filter={"event_fields": ["type", "content.body"],
                                    "room": {"timeline": {"limit": 1}}})
    assert timeline_events(body, room_id) == [{"type": "m.room.message", "content": {"body": "trimmed"}}]
