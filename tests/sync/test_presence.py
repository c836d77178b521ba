"""Presence: seen only by users who share a room; off by default."""

from __future__ import annotations

from tests.support.client import register_user
from tests.support.server import RunningServer
from tests.support.sync import create_room, shared_room, sync, sync_until


def status_path(user_id: str) -> str:
    return f"/_matrix/client/v3/presence/{user_id}/status"


def presence_of(body: dict, user_id: str) -> list[dict]:
    return [e for e in body.get("presence", {}).get("events", []) if e["sender"] == user_id]


def test_presence_reaches_room_mates_only(presence_server: RunningServer) -> None:
    base = presence_server.base_url
    alice, bob, carol = (register_user(base) for _ in range(3))
    shared_room(alice, bob)
    create_room(carol)
    bob_since = sync(bob)["next_batch"]
    carol_since = sync(carol)["next_batch"]
    response = alice.put(status_path(alice.user_id), {"presence": "unavailable", "status_msg": "lunch"})
    assert response.status == 200, response
    body, _ = sync_until(bob, bob_since, lambda b: any(
        e["content"]["presence"] == "unavailable" for e in presence_of(b, alice.user_id)))
    event = presence_of(body, alice.user_id)[-1]
    assert event["content"]["status_msg"] == "lunch"
    assert isinstance(event["content"]["last_active_ago"], int)
    carol_body = sync(carol, carol_since, timeout=500)
    assert presence_of(carol_body, alice.user_id) == []
    assert presence_of(sync(carol), alice.user_id) == []
    assert bob.get(status_path(alice.user_id)).body["presence"] == "unavailable"
    assert carol.get(status_path(alice.user_id)).status == 403


def test_presence_validation(presence_server: RunningServer) -> None:
    alice = register_user(presence_server.base_url)
    bob = register_user(presence_server.base_url)
    assert alice.put(status_path(alice.user_id), {"presence": "dancing"}).status == 400
    assert alice.put(status_path(alice.user_id), {}).status == 400
    assert alice.put(status_path(alice.user_id), {"presence": "online", "status_msg": 3}).status == 400
    assert alice.put(status_path(bob.user_id), {"presence": "online"}).status == 403
    raw = alice.request("PUT", status_path(alice.user_id), raw=b"nope")
    assert raw.status == 400
    assert alice.get(status_path(alice.user_id)).body["presence"] == "offline"


def test_presence_disabled_answers_but_sends_nothing(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    shared_room(alice, bob)
    since = sync(bob)["next_batch"]
    assert alice.put(status_path(alice.user_id), {"presence": "online", "status_msg": "hi"}).status == 200
    assert alice.get(status_path(alice.user_id)).body["presence"] == "online"
    assert "presence" not in sync(bob, since, timeout=300)
    assert "presence" not in sync(bob)


def test_joining_a_room_brings_its_members_presence(presence_server: RunningServer) -> None:
    base = presence_server.base_url
    alice, bob = register_user(base), register_user(base)
    room_id = create_room(alice)
    assert alice.put(status_path(alice.user_id), {"presence": "unavailable"}).status == 200
    since = sync(bob, set_presence="offline")["next_batch"]
    assert alice.post(f"/_matrix/client/v3/rooms/{room_id}/invite", {"user_id": bob.user_id}).status == 200
    assert bob.post(f"/_matrix/client/v3/join/{room_id}", {}).status == 200
    sync_until(bob, since, lambda b: any(e["content"]["presence"] == "unavailable"
                                         for e in presence_of(b, alice.user_id)),
               set_presence="offline")
