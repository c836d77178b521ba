"""/messages pagination (both directions, while messages keep arriving), /context, /event."""

from __future__ import annotations

import json
import threading

import pytest

from tests.support.client import Client, q
from tests.support.rooms import V3, create_room, join, messages, new_user, send_message
from tests.support.server import RunningServer


@pytest.fixture
def room(server: RunningServer) -> tuple[Client, Client, str]:
    alice, bob = new_user(server.base_url), new_user(server.base_url)
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    return alice, bob, room_id


def paginate(client: Client, room_id: str, direction: str, start: str | None, limit: int = 7,
             max_pages: int = 200) -> tuple[list[dict], str | None]:
    """Follow `end` until the server says there is no more; return events and the last end."""
    events: list[dict] = []
    token = start
    last_end = start
    for _ in range(max_pages):
        params = {"dir": direction, "limit": limit}
        if token is not None:
            params["from"] = token
        page = messages(client, room_id, **params)
        events.extend(page["chunk"])
        if "end" not in page:
            return events, last_end
        last_end = token = page["end"]
    raise AssertionError("pagination did not finish")


def test_pagination_joins_up_with_the_live_timeline(room: tuple[Client, Client, str]) -> None:
    alice, bob, room_id = room
    for i in range(25):
        send_message(alice, room_id, f"early {i}")
    head = messages(bob, room_id, dir="b", limit=1)
    anchor = head["start"]
    sent_later: list[str] = []
    stop = threading.Event()

    def keep_sending() -> None:
        n = 0
        while not stop.is_set() and n < 40:
            sent_later.append(send_message(alice, room_id, f"late {n}"))
            n += 1

    sender = threading.Thread(target=keep_sending)
    sender.start()
    try:
        backwards, _ = paginate(bob, room_id, "b", anchor)
        forwards_while_sending, forward_end = paginate(bob, room_id, "f", anchor)
    finally:
        stop.set()
        sender.join()
    rest, _ = paginate(bob, room_id, "f", forward_end)
    forwards = forwards_while_sending + rest

    back_ids = [e["event_id"] for e in backwards]
    fwd_ids = [e["event_id"] for e in forwards]
    assert len(back_ids) == len(set(back_ids))
    assert len(fwd_ids) == len(set(fwd_ids))
    assert not set(back_ids) & set(fwd_ids)
    assert fwd_ids == sent_later  # every live event, in order, none missing
    assert [e["content"].get("body") for e in backwards if e["type"] == "m.room.message"] == [
        f"early {i}" for i in reversed(range(25))
    ]
    assert backwards[-1]["type"] == "m.room.create"
    timestamps = [e["origin_server_ts"] for e in reversed(backwards)] + [e["origin_server_ts"] for e in forwards]
    assert timestamps == sorted(timestamps)


def test_from_is_optional_in_both_directions(room: tuple[Client, Client, str]) -> None:
    alice, _, room_id = room
    last = send_message(alice, room_id, "newest")
    newest = messages(alice, room_id, dir="b", limit=1)["chunk"]
    assert newest[0]["event_id"] == last
    oldest = messages(alice, room_id, dir="f", limit=1)["chunk"]
    assert oldest[0]["type"] == "m.room.create"


def test_to_token_bounds_the_page(room: tuple[Client, Client, str]) -> None:
    alice, _, room_id = room
    for i in range(5):
        send_message(alice, room_id, f"m{i}")
    middle = messages(alice, room_id, dir="b", limit=2)["end"]
    page = messages(alice, room_id, dir="b", limit=50, to=middle)
    assert [e["content"]["body"] for e in page["chunk"]] == ["m4", "m3"]


def test_filter_types_senders_and_url(room: tuple[Client, Client, str]) -> None:
    alice, bob, room_id = room
    send_message(alice, room_id, "from alice")
    send_message(bob, room_id, "from bob")
    send_message(bob, room_id, "a picture", msgtype="m.image", url="mxc://test.local/abc")

    def bodies(room_filter: dict) -> list[str]:
        page = messages(alice, room_id, dir="b", limit=50, filter=json.dumps(room_filter))
        return [e["content"].get("body") for e in page["chunk"]]

    assert bodies({"types": ["m.room.message"], "senders": [bob.user_id]}) == ["a picture", "from bob"]
    assert bodies({"types": ["m.room.message"], "not_senders": [bob.user_id]}) == ["from alice"]
    assert bodies({"types": ["m.room.*"], "contains_url": True}) == ["a picture"]
    assert "from alice" not in bodies({"not_types": ["m.room.message"]})
    lazy = messages(alice, room_id, dir="b", limit=3,
                    filter=json.dumps({"lazy_load_members": True, "types": ["m.room.message"]}))
    assert {e["state_key"] for e in lazy["state"]} == {alice.user_id, bob.user_id}


@pytest.mark.parametrize("params", [
    {"dir": "sideways"}, {"from": "garbage"}, {"limit": "ten"}, {"filter": "{not json"},
    {"filter": "[]"}, {"filter": json.dumps({"types": "m.room.message"})}, {"to": "t1"},
])
def test_bad_messages_params(room: tuple[Client, Client, str], params: dict) -> None:
    alice, _, room_id = room
    response = alice.get(f"{V3}/rooms/{q(room_id)}/messages", params=params)
    assert response.status == 400, response


def test_context(room: tuple[Client, Client, str]) -> None:
    alice, bob, room_id = room
    ids = [send_message(alice, room_id, f"c{i}") for i in range(7)]
    response = bob.get(f"{V3}/rooms/{q(room_id)}/context/{q(ids[3])}", params={"limit": 4})
    assert response.status == 200, response
    body = response.body
    assert body["event"]["event_id"] == ids[3]
    assert [e["event_id"] for e in body["events_before"]] == [ids[2], ids[1]]
    assert [e["event_id"] for e in body["events_after"]] == [ids[4], ids[5]]
    assert {("m.room.create", "")} <= {(e["type"], e["state_key"]) for e in body["state"]}
    before = messages(bob, room_id, dir="b", **{"from": body["start"], "limit": 1})["chunk"]
    after = messages(bob, room_id, dir="f", **{"from": body["end"], "limit": 1})["chunk"]
    assert before[0]["event_id"] == ids[0]
    assert after[0]["event_id"] == ids[6]


def test_unknown_events_are_404(room: tuple[Client, Client, str]) -> None:
    alice, _, room_id = room
    for path in ("event", "context"):
        for event_id in ("$unknown", "not-an-event"):
            response = alice.get(f"{V3}/rooms/{q(room_id)}/{path}/{q(event_id)}")
            assert (response.status, response.errcode) == (404, "M_NOT_FOUND")


def test_event_from_another_room_is_404(room: tuple[Client, Client, str]) -> None:
    alice, _, room_id = room
    other = create_room(alice)
    event_id = send_message(alice, other, "elsewhere")
    response = alice.get(f"{V3}/rooms/{q(room_id)}/event/{q(event_id)}")
    assert response.status == 404
