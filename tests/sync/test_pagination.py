"""A limited timeline's prev_batch pages back through /messages to the events before the gap."""

from __future__ import annotations

from tests.support.client import register_user
from tests.support.server import RunningServer
from tests.support.sync import create_room, joined_room, send_text, sync


def test_prev_batch_joins_up_with_messages(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    room_id = create_room(alice)
    since = sync(alice)["next_batch"]
    sent = [send_text(alice, room_id, f"m{n}") for n in range(12)]
    body = sync(alice, since, sync_filter={"room": {"timeline": {"limit": 5}}})
    timeline = joined_room(body, room_id)["timeline"]
    assert timeline["limited"] is True
    assert [e["event_id"] for e in timeline["events"]] == sent[-5:]
    response = alice.get(f"/_matrix/client/v3/rooms/{room_id}/messages",
                         params={"dir": "b", "from": timeline["prev_batch"], "limit": 7})
    assert response.status == 200, response
    older = [e["event_id"] for e in response.body["chunk"]]
    assert older == list(reversed(sent[:7]))


def test_initial_sync_limited_timeline_pages_back_to_creation(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    room_id = create_room(alice)
    sent = [send_text(alice, room_id, f"m{n}") for n in range(4)]
    timeline = joined_room(sync(alice, sync_filter={"room": {"timeline": {"limit": 2}}}), room_id)["timeline"]
    assert timeline["limited"] is True
    response = alice.get(f"/_matrix/client/v3/rooms/{room_id}/messages",
                         params={"dir": "b", "from": timeline["prev_batch"], "limit": 100})
    chunk = response.body["chunk"]
    assert [e["event_id"] for e in chunk[:2]] == [sent[1], sent[0]]
    assert chunk[-1]["type"] == "m.room.create"


def test_messages_accepts_a_sync_next_batch_as_from(server: RunningServer) -> None:
    """Spec: ``from`` is "a token from a previous call to /sync or /messages"."""
    alice = register_user(server.base_url)
    room_id = create_room(alice)
    before = [send_text(alice, room_id, f"old{n}") for n in range(3)]
    token = sync(alice)["next_batch"]
    after = [send_text(alice, room_id, f"new{n}") for n in range(2)]
    path = f"/_matrix/client/v3/rooms/{room_id}/messages"
    backwards = alice.get(path, params={"dir": "b", "from": token, "limit": 3})
    assert backwards.status == 200, backwards
    assert [e["event_id"] for e in backwards.body["chunk"]] == list(reversed(before))
    forwards = alice.get(path, params={"dir": "f", "from": token, "limit": 10})
    assert forwards.status == 200, forwards
    assert [e["event_id"] for e in forwards.body["chunk"]] == after
    # ``to`` may be a sync token as well; junk is still refused.
    bounded = alice.get(path, params={"dir": "b", "from": sync(alice)["next_batch"], "to": token})
    assert [e["event_id"] for e in bounded.body["chunk"]] == list(reversed(after))
    for junk in ("events.x", "nonsense", "typing.3", "~"):
        refused = alice.get(path, params={"dir": "b", "from": junk})
        assert (refused.status, refused.errcode) == (400, "M_INVALID_PARAM"), junk
