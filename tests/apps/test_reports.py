"""Reporting events, rooms and users, and Synapse's event_reports admin API, over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.apps import ADMIN_V1, new_admin
from tests.support.client import Client, q
from tests.support.rooms import V3, create_room, join, new_user, put_state, send_message
from tests.support.server import RunningServer


@pytest.fixture(scope="module")
def scene(server: RunningServer) -> dict[str, Any]:
    alice, bob, carol = (new_user(server.base_url) for _ in range(3))
    room = create_room(alice, preset="public_chat", name="Reported room")
    join(bob, room)
    event = send_message(bob, room, "something rude")
    other_room = create_room(carol, preset="public_chat")
    return {"alice": alice, "bob": bob, "carol": carol, "room": room, "event": event,
            "other_room": other_room, "admin": new_admin(server)}


def report_event(client: Client, room: str, event: str, body: Any) -> Any:
    return client.post(f"{V3}/rooms/{q(room)}/report/{q(event)}", body)


def test_report_event_and_read_it_as_admin(scene: dict[str, Any]) -> None:
    alice, bob, admin, room, event = (scene[k] for k in ("alice", "bob", "admin", "room", "event"))
    assert report_event(alice, room, event, {"reason": "rude", "score": -100}).status == 200
    listed = admin.get(f"{ADMIN_V1}/event_reports", params={"room_id": room})
    assert listed.status == 200, listed
    assert listed.body["total"] == 1 and "next_token" not in listed.body
    (entry,) = listed.body["event_reports"]
    assert entry["event_id"] == event and entry["user_id"] == alice.user_id
    assert entry["sender"] == bob.user_id and entry["reason"] == "rude" and entry["score"] == -100
    assert entry["name"] == "Reported room" and entry["room_id"] == room
    detail = admin.get(f"{ADMIN_V1}/event_reports/{entry['id']}")
    assert detail.status == 200, detail
    assert detail.body["event_json"]["content"]["body"] == "something rude"
    assert detail.body["event_json"]["sender"] == bob.user_id
    assert admin.delete(f"{ADMIN_V1}/event_reports/{entry['id']}").status == 200
    gone = admin.get(f"{ADMIN_V1}/event_reports/{entry['id']}")
    assert (gone.status, gone.errcode) == (404, "M_NOT_FOUND")
    again = admin.delete(f"{ADMIN_V1}/event_reports/{entry['id']}")
    assert (again.status, again.errcode) == (404, "M_NOT_FOUND")


def test_admin_listing_filters_and_pages(scene: dict[str, Any]) -> None:
    alice, bob, admin, room = (scene[k] for k in ("alice", "bob", "admin", "room"))
    events = [send_message(alice, room, f"m{i}") for i in range(3)]
    for event in events:
        assert report_event(bob, room, event, {"reason": event}).status == 200
    by_bob = admin.get(f"{ADMIN_V1}/event_reports", params={"user_id": bob.user_id, "limit": 2})
    assert by_bob.body["total"] == 3 and len(by_bob.body["event_reports"]) == 2
    newest_first = [e["event_id"] for e in by_bob.body["event_reports"]]
    assert newest_first == [events[2], events[1]]
    rest = admin.get(f"{ADMIN_V1}/event_reports",
                     params={"user_id": bob.user_id, "from": by_bob.body["next_token"]})
    assert [e["event_id"] for e in rest.body["event_reports"]] == [events[0]]
    forwards = admin.get(f"{ADMIN_V1}/event_reports", params={"user_id": bob.user_id, "dir": "f"})
    assert [e["event_id"] for e in forwards.body["event_reports"]] == events
    by_sender = admin.get(f"{ADMIN_V1}/event_reports", params={"event_sender_user_id": alice.user_id})
    assert {e["event_id"] for e in by_sender.body["event_reports"]} >= set(events)
    assert all(e["sender"] == alice.user_id for e in by_sender.body["event_reports"])


def test_only_members_who_can_see_the_event_may_report_it(server: RunningServer,
                                                          scene: dict[str, Any]) -> None:
    alice, carol, room, event, other_room = (scene[k] for k in ("alice", "carol", "room", "event", "other_room"))
    for client, room_id, event_id in ((carol, room, event), (alice, room, "$" + "A" * 43),
                                      (carol, other_room, event)):
        response = report_event(client, room_id, event_id, {"reason": "x"})
        assert (response.status, response.errcode) == (404, "M_NOT_FOUND"), response
    # History visibility: a user who joined later cannot report what they could never see.
    private = create_room(alice, preset="public_chat")
    assert put_state(alice, private, "m.room.history_visibility", {"history_visibility": "joined"}).status == 200
    secret = send_message(alice, private, "before dave")
    dave = new_user(server.base_url)
    join(dave, private)
    response = report_event(dave, private, secret, {"reason": "x"})
    assert (response.status, response.errcode) == (404, "M_NOT_FOUND")
    assert report_event(dave, private, send_message(alice, private, "after"), {}).status == 200


def test_report_room_and_user(scene: dict[str, Any]) -> None:
    carol, bob, room = scene["carol"], scene["bob"], scene["room"]
    assert carol.post(f"{V3}/rooms/{q(room)}/report", {"reason": ""}).status == 200
    assert carol.post(f"{V3}/users/{q(bob.user_id)}/report", {"reason": "spammer"}).status == 200
    assert carol.post(f"{V3}/users/{q('@someone:elsewhere.example')}/report", {"reason": "x"}).status == 200
    unknown_room = carol.post(f"{V3}/rooms/{q('!nope:test.local')}/report", {"reason": "x"})
    assert (unknown_room.status, unknown_room.errcode) == (404, "M_NOT_FOUND")
    unknown_user = carol.post(f"{V3}/users/{q('@nobody-here:test.local')}/report", {"reason": "x"})
    assert (unknown_user.status, unknown_user.errcode) == (404, "M_NOT_FOUND")


@pytest.mark.parametrize("path,body,errcode", [
    ("/rooms/{room}/report/{event}", {"reason": 5}, "M_BAD_JSON"),
    ("/rooms/{room}/report/{event}", {"score": "low"}, "M_BAD_JSON"),
    ("/rooms/{room}/report/{event}", [], "M_NOT_JSON"),
    ("/rooms/{room}/report", {}, "M_MISSING_PARAM"),
    ("/rooms/{room}/report", {"reason": None}, "M_BAD_JSON"),
    ("/rooms/{room}/report", {"reason": ["x"]}, "M_BAD_JSON"),
    ("/users/{user}/report", {}, "M_MISSING_PARAM"),
    ("/users/{user}/report", {"reason": {}}, "M_BAD_JSON"),
    ("/rooms/not-a-room/report", {"reason": "x"}, "M_INVALID_PARAM"),
    ("/rooms/not-a-room/report/{event}", {"reason": "x"}, "M_INVALID_PARAM"),
    ("/rooms/{room}/report/not-an-event", {"reason": "x"}, "M_INVALID_PARAM"),
    ("/users/not-a-user/report", {"reason": "x"}, "M_INVALID_PARAM"),
])
def test_bad_report_requests(scene: dict[str, Any], path: str, body: Any, errcode: str) -> None:
    url = V3 + path.format(room=q(scene["room"]), event=q(scene["event"]), user=q(scene["bob"].user_id))
    response = scene["alice"].post(url, body)
    assert (response.status, response.errcode) == (400, errcode), response


def test_not_json_report_bodies(scene: dict[str, Any]) -> None:
    response = scene["alice"].request("POST", f"{V3}/rooms/{q(scene['room'])}/report", raw=b"{oops")
    assert (response.status, response.errcode) == (400, "M_NOT_JSON")


def test_non_admins_are_refused(scene: dict[str, Any]) -> None:
    alice = scene["alice"]
    for method, path in (("GET", "/event_reports"), ("GET", "/event_reports/1"), ("DELETE", "/event_reports/1")):
        response = alice.request(method, ADMIN_V1 + path)
        assert (response.status, response.errcode) == (403, "M_FORBIDDEN"), (method, path, response)
        response = alice.request(method, ADMIN_V1 + path, token=False)
        assert (response.status, response.errcode) == (401, "M_MISSING_TOKEN")


@pytest.mark.parametrize("params", [{"from": "-1"}, {"limit": "-5"}, {"limit": "many"}, {"dir": "up"},
                                    {"from": "x"}])
def test_bad_admin_list_params(scene: dict[str, Any], params: dict[str, str]) -> None:
    response = scene["admin"].get(f"{ADMIN_V1}/event_reports", params=params)
    assert (response.status, response.errcode) == (400, "M_INVALID_PARAM"), response


def test_bad_report_ids(scene: dict[str, Any]) -> None:
    admin = scene["admin"]
    for report_id in ("abc", "-1", "1" * 40):
        for method in ("GET", "DELETE"):
            response = admin.request(method, f"{ADMIN_V1}/event_reports/{report_id}")
            assert (response.status, response.errcode) == (400, "M_INVALID_PARAM"), response
    response = admin.get(f"{ADMIN_V1}/event_reports/12345")
    assert (response.status, response.errcode) == (404, "M_NOT_FOUND")
    big = admin.get(f"{ADMIN_V1}/event_reports", params={"from": "9" * 30, "limit": "9" * 30})
    assert big.status == 200 and big.body["event_reports"] == []
