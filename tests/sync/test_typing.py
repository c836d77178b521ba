"""PUT /typing: starts, stops and expires, and reaches the room's other members."""

from __future__ import annotations

import time

import pytest

from tests.support.client import register_user
from tests.support.server import RunningServer
from tests.support.sync import create_room, ephemeral_of, shared_room, sync, sync_until


def typing_path(room_id: str, user_id: str) -> str:
    return f"/_matrix/client/v3/rooms/{room_id}/typing/{user_id}"


def typing_users(body: dict, room_id: str) -> list[str] | None:
    events = ephemeral_of(body, room_id, "m.typing")
    return events[-1]["content"]["user_ids"] if events else None


def test_typing_starts_and_stops(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    room_id = shared_room(alice, bob)
    since = sync(bob)["next_batch"]
    assert alice.put(typing_path(room_id, alice.user_id), {"typing": True, "timeout": 30000}).status == 200
    body, since = sync_until(bob, since, lambda b: typing_users(b, room_id) == [alice.user_id])
    assert alice.put(typing_path(room_id, alice.user_id), {"typing": False}).status == 200
    sync_until(bob, since, lambda b: typing_users(b, room_id) == [])


def test_typing_expires_after_its_timeout(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    room_id = shared_room(alice, bob)
    since = sync(bob)["next_batch"]
    alice.put(typing_path(room_id, alice.user_id), {"typing": True, "timeout": 500})
    body, since = sync_until(bob, since, lambda b: typing_users(b, room_id) == [alice.user_id])
    started = time.monotonic()
    sync_until(bob, since, lambda b: typing_users(b, room_id) == [], timeout=10_000)
    assert time.monotonic() - started < 60  # it did expire on its own, not by a later call


def test_initial_sync_shows_who_is_typing(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    room_id = shared_room(alice, bob)
    alice.put(typing_path(room_id, alice.user_id), {"typing": True, "timeout": 60000})
    assert typing_users(sync(bob), room_id) == [alice.user_id]


def test_cannot_type_for_someone_else_or_outside_the_room(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    room_id = create_room(alice)
    assert alice.put(typing_path(room_id, bob.user_id), {"typing": True}).status == 403
    assert bob.put(typing_path(room_id, bob.user_id), {"typing": True}).status == 403


@pytest.mark.parametrize("body", [{}, {"typing": "yes"}, {"typing": True, "timeout": "long"},
                                  {"typing": True, "timeout": -1}, [1]])
def test_malformed_typing_bodies(server: RunningServer, body: object) -> None:
    alice = register_user(server.base_url)
    room_id = create_room(alice)
    response = alice.put(typing_path(room_id, alice.user_id), body)
    assert response.status == 400, response


def test_typing_body_not_json(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    room_id = create_room(alice)
    response = alice.request("PUT", typing_path(room_id, alice.user_id), raw=b"{nope")
    assert response.status == 400 and response.errcode == "M_NOT_JSON"
