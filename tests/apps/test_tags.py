"""Room tags over HTTP: GET, PUT and DELETE per tag, delivered as m.tag room account data in /sync."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.client import Client, q
from tests.support.rooms import V3, create_room, new_user
from tests.support.server import RunningServer
from tests.support.sync import sync


@pytest.fixture(scope="module")
def alice_room(server: RunningServer) -> tuple[Client, str]:
    alice = new_user(server.base_url)
    return alice, create_room(alice, preset="private_chat")


def tags_url(client: Client, room_id: str, tag: str | None = None, user_id: str | None = None) -> str:
    base = f"{V3}/user/{q(user_id or str(client.user_id))}/rooms/{q(room_id)}/tags"
    return base if tag is None else f"{base}/{q(tag)}"


def room_tags_in_sync(body: dict[str, Any], room_id: str) -> dict[str, Any] | None:
    events = body.get("rooms", {}).get("join", {}).get(room_id, {}).get("account_data", {}).get("events", [])
    for event in events:
        if event["type"] == "m.tag":
            return event["content"]["tags"]
    return None


def test_tags_round_trip_and_sync(alice_room: tuple[Client, str]) -> None:
    alice, room_id = alice_room
    assert alice.get(tags_url(alice, room_id)).body == {"tags": {}}
    first = sync(alice)
    assert alice.put(tags_url(alice, room_id, "m.favourite"), {"order": 0.25}).status == 200
    assert alice.put(tags_url(alice, room_id, "u.work"), {}).status == 200
    response = alice.get(tags_url(alice, room_id))
    assert response.status == 200
    assert response.body == {"tags": {"m.favourite": {"order": 0.25}, "u.work": {}}}
    incremental = sync(alice, since=first["next_batch"])
    assert room_tags_in_sync(incremental, room_id) == {"m.favourite": {"order": 0.25}, "u.work": {}}

    assert alice.delete(tags_url(alice, room_id, "m.favourite")).status == 200
    assert alice.get(tags_url(alice, room_id)).body == {"tags": {"u.work": {}}}
    # Removing a tag that is not there is not an error (as Synapse answers).
    assert alice.delete(tags_url(alice, room_id, "m.favourite")).status == 200
    initial = sync(alice)
    assert room_tags_in_sync(initial, room_id) == {"u.work": {}}


def test_tags_of_another_user_are_forbidden(server: RunningServer, alice_room: tuple[Client, str]) -> None:
    alice, room_id = alice_room
    bob = new_user(server.base_url)
    for method, tag in (("GET", None), ("PUT", "m.lowpriority"), ("DELETE", "m.lowpriority")):
        response = bob.request(method, tags_url(bob, room_id, tag, user_id=str(alice.user_id)),
                               {} if method == "PUT" else None)
        assert (response.status, response.errcode) == (403, "M_FORBIDDEN"), (method, response)


def test_tags_need_a_token(alice_room: tuple[Client, str]) -> None:
    alice, room_id = alice_room
    response = alice.get(tags_url(alice, room_id), token=False)
    assert (response.status, response.errcode) == (401, "M_MISSING_TOKEN")


@pytest.mark.parametrize("raw,errcode", [
    (b"not json", "M_NOT_JSON"), (b"[1, 2]", "M_NOT_JSON"), (b'{"order": "high"}', "M_BAD_JSON"),
    (b'{"order": true}', "M_BAD_JSON"), (b'{"x": "\\u0000"}', "M_BAD_JSON"),
])
def test_malformed_tag_bodies(alice_room: tuple[Client, str], raw: bytes, errcode: str) -> None:
    alice, room_id = alice_room
    response = alice.request("PUT", tags_url(alice, room_id, "u.bad"), raw=raw)
    assert (response.status, response.errcode) == (400, errcode), response


def test_bad_room_ids_and_tag_names(alice_room: tuple[Client, str]) -> None:
    alice, room_id = alice_room
    response = alice.get(tags_url(alice, "not a room"))
    assert (response.status, response.errcode) == (400, "M_INVALID_PARAM")
    response = alice.put(tags_url(alice, room_id, "t" * 300), {})
    assert (response.status, response.errcode) == (400, "M_INVALID_PARAM")
    response = alice.request("PUT", tags_url(alice, room_id) + "/a%00b", {})
    assert (response.status, response.errcode) == (400, "M_INVALID_PARAM")
