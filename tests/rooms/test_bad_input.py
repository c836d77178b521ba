"""Malformed input on every room endpoint gets the right 4xx, never a 500."""

from __future__ import annotations

import json

import pytest

from tests.support.client import Client, q
from tests.support.rooms import V1, V3, create_room, new_user, send_message
from tests.support.server import RunningServer


@pytest.fixture(scope="module")
def setup(server: RunningServer) -> tuple[Client, str, str]:
    alice = new_user(server.base_url)
    room_id = create_room(alice, preset="public_chat")
    return alice, room_id, send_message(alice, room_id)


MALFORMED_ROOM_PATHS = [
    ("GET", "/rooms/{r}/state"), ("GET", "/rooms/{r}/state/m.room.name/"),
    ("PUT", "/rooms/{r}/state/m.room.name/"), ("PUT", "/rooms/{r}/send/m.room.message/t"),
    ("GET", "/rooms/{r}/messages"), ("GET", "/rooms/{r}/members"), ("GET", "/rooms/{r}/joined_members"),
    ("GET", "/rooms/{r}/event/$e"), ("GET", "/rooms/{r}/context/$e"), ("POST", "/rooms/{r}/leave"),
    ("POST", "/rooms/{r}/forget"), ("POST", "/rooms/{r}/join"), ("GET", "/rooms/{r}/aliases"),
    ("GET", "/directory/list/room/{r}"), ("PUT", "/rooms/{r}/redact/$e/t"),
    ("POST", "/rooms/{r}/receipt/m.read/$e"), ("POST", "/rooms/{r}/read_markers"),
    ("PUT", "/rooms/{r}/typing/@someone:test.local"),
]


@pytest.mark.parametrize("method,path", MALFORMED_ROOM_PATHS)
def test_malformed_room_id_is_invalid_param(setup: tuple[Client, str, str], method: str, path: str) -> None:
    alice, _, _ = setup
    response = alice.request(method, V3 + path.format(r=q("not a room")), {})
    assert (response.status, response.errcode) == (400, "M_INVALID_PARAM"), (method, path, response)


@pytest.mark.parametrize("path", [
    "/rooms/{r}/state/{nul}/", "/rooms/{r}/state/m.room.name/{nul}",
    "/rooms/{r}/send/{nul}/t1", "/rooms/{r}/send/m.room.message/{nul}",
    "/rooms/{r}/event/{nul}", "/rooms/{r}/context/{nul}",
])
def test_nul_in_path_segments(setup: tuple[Client, str, str], path: str) -> None:
    alice, room_id, _ = setup
    method = "PUT" if "send" in path or ("state" in path and "event" not in path) else "GET"
    url = V3 + path.format(r=q(room_id), nul="%00")
    for verb in {method, "GET"} if "state" in path else {method}:
        response = alice.request(verb, url, {} if verb == "PUT" else None)
        assert response.status in (400, 404), (verb, path, response)


def test_nul_in_created_state(setup: tuple[Client, str, str]) -> None:
    alice, _, _ = setup
    response = alice.post(f"{V3}/createRoom", {"initial_state": [{"type": "x\u0000y", "content": {}}]})
    assert (response.status, response.errcode) == (400, "M_BAD_JSON")
    relations = alice.get(f"{V1}/rooms/{q(setup[1])}/relations/{q(setup[2])}/%00")
    assert relations.status == 400


@pytest.mark.parametrize("params", [
    {"from": "t1-99999999999999999999999999"}, {"to": "s99999999999999999999999", "dir": "f"},
    {"to": "s99999999999999999999999", "dir": "b"}, {"limit": "99999999999999999999"},
    {"filter": json.dumps({"types": ["a\u0000"]})}, {"filter": json.dumps({"senders": [1]})},
])
def test_extreme_messages_params(setup: tuple[Client, str, str], params: dict) -> None:
    alice, room_id, _ = setup
    response = alice.get(f"{V3}/rooms/{q(room_id)}/messages", params=params)
    assert response.status in (200, 400), response


def test_long_type_and_state_key(setup: tuple[Client, str, str]) -> None:
    alice, room_id, _ = setup
    long_type = "t" * 300
    response = alice.put(f"{V3}/rooms/{q(room_id)}/send/{long_type}/long", {})
    assert (response.status, response.errcode) == (400, "M_BAD_JSON")
    response = alice.put(f"{V3}/rooms/{q(room_id)}/state/org.example/{'k' * 300}", {})
    assert (response.status, response.errcode) == (400, "M_BAD_JSON")


def test_floats_in_content_are_refused_where_the_room_version_forbids_them(setup: tuple[Client, str, str]) -> None:
    alice, room_id, _ = setup
    response = alice.put(f"{V3}/rooms/{q(room_id)}/send/m.room.message/float", {"n": 1.5})
    assert (response.status, response.errcode) == (400, "M_BAD_JSON")
    old_room = create_room(alice, room_version="5")
    assert alice.put(f"{V3}/rooms/{q(old_room)}/send/m.room.message/float", {"n": 1.5}).status == 200


def test_every_endpoint_needs_a_token(server: RunningServer, setup: tuple[Client, str, str]) -> None:
    _, room_id, event_id = setup
    anonymous = Client(server.base_url)
    for method, path in MALFORMED_ROOM_PATHS:
        if path.startswith("/directory/list/room"):
            continue  # reading directory visibility needs no token (spec)
        response = anonymous.request(method, V3 + path.format(r=q(room_id)).replace("$e", q(event_id)), {})
        assert response.status == 401, (method, path, response)
