"""timestamp_to_event, mutual_rooms, room_summary, admin/whois and /thirdparty over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.apps import new_admin
from tests.support.client import Client, q
from tests.support.rooms import V1, V3, create_room, join, new_user, put_state, send_message
from tests.support.server import RunningServer


@pytest.fixture(scope="module")
def alice(server: RunningServer) -> Client:
    return new_user(server.base_url)


def chronological(client: Client, room: str) -> list[dict[str, Any]]:
    response = client.get(f"{V3}/rooms/{q(room)}/messages", params={"dir": "f", "limit": 100})
    assert response.status == 200, response
    return response.body["chunk"]


def jump(client: Client, room: str, ts: Any, direction: str, expect: int = 200) -> Any:
    response = client.get(f"{V1}/rooms/{q(room)}/timestamp_to_event", params={"ts": ts, "dir": direction})
    assert response.status == expect, response
    return response.body


def test_timestamp_to_event_both_directions(alice: Client) -> None:
    room = create_room(alice)
    for i in range(4):
        send_message(alice, room, f"m{i}")
    events = chronological(alice, room)
    for target in events:
        ts = target["origin_server_ts"]
        forward = next(e for e in events if e["origin_server_ts"] >= ts)
        backward = [e for e in events if e["origin_server_ts"] <= ts][-1]
        assert jump(alice, room, ts, "f") == {"event_id": forward["event_id"], "origin_server_ts":
                                             forward["origin_server_ts"]}
        assert jump(alice, room, ts, "b")["event_id"] == backward["event_id"]
    last = events[-1]
    assert jump(alice, room, last["origin_server_ts"] + 10**9, "b")["event_id"] == last["event_id"]
    assert jump(alice, room, events[0]["origin_server_ts"] - 1, "b", 404)["errcode"] == "M_NOT_FOUND"
    assert jump(alice, room, last["origin_server_ts"] + 10**9, "f", 404)["errcode"] == "M_NOT_FOUND"


def test_timestamp_to_event_respects_history_visibility(server: RunningServer, alice: Client) -> None:
    bob, eve = new_user(server.base_url), new_user(server.base_url)
    room = create_room(alice, preset="public_chat")
    assert put_state(alice, room, "m.room.history_visibility", {"history_visibility": "joined"}).status == 200
    hidden = send_message(alice, room, "before bob")
    hidden_ts = next(e for e in chronological(alice, room) if e["event_id"] == hidden)["origin_server_ts"]
    join(bob, room)
    seen = chronological(bob, room)
    assert hidden not in {e["event_id"] for e in seen}
    # Bob sees what /messages shows him: not the message from before he joined.
    assert jump(bob, room, 0, "f")["event_id"] == seen[0]["event_id"]
    after = [e for e in seen if e["origin_server_ts"] >= hidden_ts]
    assert jump(bob, room, hidden_ts, "f")["event_id"] == after[0]["event_id"] != hidden
    assert jump(eve, room, 0, "f", 403)["errcode"] == "M_FORBIDDEN"


@pytest.mark.parametrize("params,errcode", [
    ({"dir": "f"}, "M_MISSING_PARAM"), ({"ts": "1"}, "M_MISSING_PARAM"),
    ({"ts": "x", "dir": "f"}, "M_INVALID_PARAM"), ({"ts": "1", "dir": "up"}, "M_INVALID_PARAM"),
    ({"ts": "-5", "dir": "f"}, "M_INVALID_PARAM"),
])
def test_timestamp_to_event_bad_input(alice: Client, params: dict[str, str], errcode: str) -> None:
    room = create_room(alice)
    response = alice.get(f"{V1}/rooms/{q(room)}/timestamp_to_event", params=params)
    assert (response.status, response.errcode) == (400, errcode), response
    bad_room = alice.get(f"{V1}/rooms/not-a-room/timestamp_to_event", params={"ts": "1", "dir": "f"})
    assert (bad_room.status, bad_room.errcode) == (400, "M_INVALID_PARAM")


def test_mutual_rooms(server: RunningServer, alice: Client) -> None:
    bob, carol = new_user(server.base_url), new_user(server.base_url)
    shared = sorted(create_room(alice, preset="public_chat") for _ in range(3))
    for room in shared:
        join(bob, room)
    create_room(alice)
    response = alice.get(f"{V1}/mutual_rooms", params={"user_id": bob.user_id})
    assert response.status == 200, response
    assert response.body == {"joined": shared, "count": 3}
    assert alice.get(f"{V1}/mutual_rooms", params={"user_id": carol.user_id}).body["joined"] == []
    assert alice.get(f"{V1}/mutual_rooms", params={"user_id": "@nobody:test.local"}).body["joined"] == []
    page = alice.get(f"{V1}/mutual_rooms", params={"user_id": bob.user_id, "from": shared[0]})
    assert page.body["joined"] == shared[1:]
    for params, errcode in (({}, "M_MISSING_PARAM"), ({"user_id": alice.user_id}, "M_INVALID_PARAM"),
                            ({"user_id": "bob"}, "M_INVALID_PARAM"),
                            ({"user_id": bob.user_id, "from": "junk"}, "M_INVALID_PARAM")):
        bad = alice.get(f"{V1}/mutual_rooms", params=params)
        assert (bad.status, bad.errcode) == (400, errcode), bad


def test_room_summary(server: RunningServer, alice: Client) -> None:
    bob = new_user(server.base_url)
    alias_local = "summary" + (alice.user_id or "")[2:8]
    public = create_room(alice, preset="public_chat", name="Open", topic="come in", room_alias_name=alias_local,
                         initial_state=[{"type": "m.room.encryption", "state_key": "",
                                         "content": {"algorithm": "m.megolm.v1.aes-sha2"}}])
    private = create_room(alice, preset="private_chat", name="Closed")
    summary = alice.get(f"{V1}/room_summary/{q(public)}")
    assert summary.status == 200, summary
    body = summary.body
    assert body["room_id"] == public and body["name"] == "Open" and body["topic"] == "come in"
    assert body["join_rule"] == "public" and body["num_joined_members"] == 1 and body["membership"] == "join"
    assert body["encryption"] == "m.megolm.v1.aes-sha2" and body["room_version"]
    assert body["canonical_alias"] == f"#{alias_local}:test.local"
    by_alias = bob.get(f"{V1}/room_summary/{q('#' + alias_local + ':test.local')}")
    assert by_alias.status == 200 and by_alias.body["room_id"] == public and by_alias.body["membership"] == "leave"
    anonymous = Client(server.base_url).get(f"{V1}/room_summary/{q(public)}")
    assert anonymous.status == 200 and "membership" in anonymous.body
    for client in (bob, Client(server.base_url)):
        hidden = client.get(f"{V1}/room_summary/{q(private)}")
        assert (hidden.status, hidden.errcode) == (404, "M_NOT_FOUND")
    assert alice.get(f"{V1}/room_summary/{q(private)}").body["name"] == "Closed"
    for target, status, errcode in (("#nothing:test.local", 404, "M_NOT_FOUND"), ("nonsense", 400, "M_INVALID_PARAM"),
                                    ("!unknown:test.local", 404, "M_NOT_FOUND")):
        response = alice.get(f"{V1}/room_summary/{q(target)}")
        assert (response.status, response.errcode) == (status, errcode), response
    bad_token = alice.get(f"{V1}/room_summary/{q(public)}", token="not-a-token")
    assert (bad_token.status, bad_token.errcode) == (401, "M_UNKNOWN_TOKEN")


def test_whois(server: RunningServer, alice: Client) -> None:
    bob = new_user(server.base_url)
    mine = alice.get(f"{V3}/admin/whois/{q(alice.user_id or '')}")
    assert mine.status == 200, mine
    assert mine.body["user_id"] == alice.user_id and alice.device_id in mine.body["devices"]
    sessions = mine.body["devices"][alice.device_id]["sessions"]
    assert isinstance(sessions, list) and all("connections" in s for s in sessions)
    other = bob.get(f"{V3}/admin/whois/{q(alice.user_id or '')}")
    assert (other.status, other.errcode) == (403, "M_FORBIDDEN")
    admin = new_admin(server)
    as_admin = admin.get(f"{V3}/admin/whois/{q(bob.user_id or '')}")
    assert as_admin.status == 200 and bob.device_id in as_admin.body["devices"]
    bad = admin.get(f"{V3}/admin/whois/not-a-user")
    assert (bad.status, bad.errcode) == (400, "M_INVALID_PARAM")


def test_thirdparty_answers_empty(server: RunningServer, alice: Client) -> None:
    assert alice.get(f"{V3}/thirdparty/protocols").body == {}
    unknown = alice.get(f"{V3}/thirdparty/protocol/irc")
    assert (unknown.status, unknown.errcode) == (404, "M_NOT_FOUND")
    for path in ("/thirdparty/location/irc", "/thirdparty/user/irc", "/thirdparty/location", "/thirdparty/user"):
        response = alice.get(V3 + path, params={"alias": "#x:irc", "userid": "@x:irc", "searchFields": "x"})
        assert (response.status, response.body) == (200, []), path
    anonymous = Client(server.base_url).get(f"{V3}/thirdparty/protocols")
    assert (anonymous.status, anonymous.errcode) == (401, "M_MISSING_TOKEN")
