"""Global and per-room account data over HTTP."""

from __future__ import annotations

import pytest

from tests.support.accounts import V3
from tests.support.client import q, register_user
from tests.support.server import RunningServer

ROOM = "!someroom:test.local"


def test_global_account_data_round_trips_and_overwrites(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    path = f"{V3}/user/{q(alice.user_id)}/account_data/org.example.settings"
    assert alice.get(path).errcode == "M_NOT_FOUND"
    assert alice.put(path, {"theme": "dark", "nested": {"n": [1, 2]}}).status == 200
    assert alice.get(path).body == {"theme": "dark", "nested": {"n": [1, 2]}}
    assert alice.put(path, {"theme": "light"}).status == 200
    assert alice.get(path).body == {"theme": "light"}


def test_room_account_data_is_separate_from_global(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    room_path = f"{V3}/user/{q(alice.user_id)}/rooms/{q(ROOM)}/account_data/m.tag"
    global_path = f"{V3}/user/{q(alice.user_id)}/account_data/m.tag"
    assert alice.put(room_path, {"tags": {"u.work": {}}}).status == 200
    assert alice.get(room_path).body == {"tags": {"u.work": {}}}
    assert alice.get(global_path).errcode == "M_NOT_FOUND"
    other_room = f"{V3}/user/{q(alice.user_id)}/rooms/{q('!other:test.local')}/account_data/m.tag"
    assert alice.get(other_room).errcode == "M_NOT_FOUND"


def test_room_account_data_in_a_version_12_room(server: RunningServer) -> None:
    """v12 room IDs are `!` + the create event's hash, with no `:server` part."""
    alice = register_user(server.base_url)
    created = alice.post(f"{V3}/createRoom", {"room_version": "12"})
    assert created.status == 200, created
    room_id = created.body["room_id"]
    assert ":" not in room_id
    path = f"{V3}/user/{q(alice.user_id)}/rooms/{q(room_id)}/account_data/m.tag"
    response = alice.put(path, {"tags": {"u.work": {"order": 0.5}}})
    assert response.status == 200, response
    assert alice.get(path).body == {"tags": {"u.work": {"order": 0.5}}}
    synced = alice.get(f"{V3}/sync", params={"timeout": 0}).body
    room_data = synced["rooms"]["join"][room_id]["account_data"]["events"]
    assert {"type": "m.tag", "content": {"tags": {"u.work": {"order": 0.5}}}} in room_data
    for bad in ("!tooshort", "!" + "A" * 42 + "=", "#alias:test.local", "!:test.local"):
        refused = alice.put(f"{V3}/user/{q(alice.user_id)}/rooms/{q(bad)}/account_data/m.tag", {})
        assert (refused.status, refused.errcode) == (400, "M_INVALID_PARAM"), bad


def test_other_users_account_data_is_forbidden(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    path = f"{V3}/user/{q(alice.user_id)}/account_data/org.example.x"
    assert alice.put(path, {"a": 1}).status == 200
    assert (bob.get(path).status, bob.get(path).errcode) == (403, "M_FORBIDDEN")
    assert bob.put(path, {"a": 2}).errcode == "M_FORBIDDEN"
    assert alice.get(path).body == {"a": 1}


def test_types_owned_by_other_apis_are_refused(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    fully_read = alice.put(f"{V3}/user/{q(alice.user_id)}/rooms/{q(ROOM)}/account_data/m.fully_read",
                           {"event_id": "$x"})
    assert fully_read.status == 405
    push_rules = alice.put(f"{V3}/user/{q(alice.user_id)}/account_data/m.push_rules", {})
    assert push_rules.status == 400


@pytest.mark.parametrize("suffix,raw", [
    ("/account_data/t", b"nope"),
    ("/account_data/t", b"[1, 2]"),
    ("/account_data/t", b"\"a string\""),
    ("/rooms/not-a-room/account_data/t", b"{}"),
    ("/account_data/" + "x" * 300, b"{}"),
])
def test_malformed_account_data_requests_are_client_errors(server: RunningServer, suffix: str,
                                                           raw: bytes) -> None:
    alice = register_user(server.base_url)
    response = alice.put(f"{V3}/user/{q(alice.user_id)}{suffix}", raw=raw)
    assert 400 <= response.status < 500, response
