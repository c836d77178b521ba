"""History visibility on every read path: /messages, /event, /context, /relations, /state."""

from __future__ import annotations

import pytest

from tests.support.client import Client, q
from tests.support.rooms import (
    V1,
    V3,
    create_room,
    invite,
    join,
    leave,
    messages,
    new_user,
    put_state,
    send_message,
)
from tests.support.server import RunningServer


@pytest.fixture
def people(server: RunningServer) -> tuple[Client, Client, Client]:
    return new_user(server.base_url), new_user(server.base_url), new_user(server.base_url)


def visible_bodies(client: Client, room_id: str) -> list[str]:
    chunk = messages(client, room_id, dir="f", limit=100)["chunk"]
    return [e["content"]["body"] for e in chunk if e["type"] == "m.room.message"]


def can_fetch(client: Client, room_id: str, event_id: str) -> bool:
    event = client.get(f"{V3}/rooms/{q(room_id)}/event/{q(event_id)}")
    context = client.get(f"{V3}/rooms/{q(room_id)}/context/{q(event_id)}")
    relations = client.get(f"{V1}/rooms/{q(room_id)}/relations/{q(event_id)}")
    statuses = {event.status, context.status, relations.status}
    assert len(statuses) == 1, (event, context, relations)
    return statuses == {200}


def room_with(alice: Client, visibility: str) -> str:
    room_id = create_room(alice, preset="public_chat")
    assert put_state(alice, room_id, "m.room.history_visibility",
                     {"history_visibility": visibility}).status == 200
    return room_id


def test_joined_hides_history_from_late_joiners(people: tuple[Client, Client, Client]) -> None:
    alice, bob, _ = people
    room_id = room_with(alice, "joined")
    before = send_message(alice, room_id, "before bob")
    join(bob, room_id)
    after = send_message(alice, room_id, "after bob")
    assert visible_bodies(bob, room_id) == ["after bob"]
    assert not can_fetch(bob, room_id, before)
    assert can_fetch(bob, room_id, after)
    assert visible_bodies(alice, room_id) == ["before bob", "after bob"]


def test_shared_shows_history_to_late_joiners(people: tuple[Client, Client, Client]) -> None:
    alice, bob, _ = people
    room_id = room_with(alice, "shared")
    before = send_message(alice, room_id, "before bob")
    join(bob, room_id)
    assert visible_bodies(bob, room_id) == ["before bob"]
    assert can_fetch(bob, room_id, before)


def test_invited_shows_events_from_the_invite_on(people: tuple[Client, Client, Client]) -> None:
    alice, bob, _ = people
    room_id = room_with(alice, "invited")
    send_message(alice, room_id, "before invite")
    invite(alice, room_id, bob.user_id)
    send_message(alice, room_id, "while invited")
    join(bob, room_id)
    send_message(alice, room_id, "joined")
    assert visible_bodies(bob, room_id) == ["while invited", "joined"]


def test_world_readable_lets_anyone_read(people: tuple[Client, Client, Client]) -> None:
    alice, _, carol = people
    room_id = room_with(alice, "world_readable")
    event_id = send_message(alice, room_id, "for the world")
    assert visible_bodies(carol, room_id) == ["for the world"]
    assert can_fetch(carol, room_id, event_id)
    assert carol.get(f"{V3}/rooms/{q(room_id)}/state").status == 200


def test_outsiders_see_nothing_of_a_shared_room(people: tuple[Client, Client, Client]) -> None:
    alice, _, carol = people
    room_id = room_with(alice, "shared")
    event_id = send_message(alice, room_id, "members only")
    assert carol.get(f"{V3}/rooms/{q(room_id)}/messages").status == 403
    assert carol.get(f"{V3}/rooms/{q(room_id)}/state").status == 403
    # GET /event answers 404 as for an event that does not exist, so an outsider cannot
    # learn which event IDs the room holds (spec; Synapse does the same).
    seen = carol.get(f"{V3}/rooms/{q(room_id)}/event/{q(event_id)}")
    missing = carol.get(f"{V3}/rooms/{q(room_id)}/event/{q('$' + 'A' * 43)}")
    assert (seen.status, seen.errcode) == (missing.status, missing.errcode) == (404, "M_NOT_FOUND")
    assert seen.body["error"] == missing.body["error"]


def test_left_user_keeps_history_up_to_the_leave(people: tuple[Client, Client, Client]) -> None:
    alice, bob, _ = people
    room_id = room_with(alice, "shared")
    send_message(alice, room_id, "while bob is here")
    join(bob, room_id)
    leave(bob, room_id)
    after = send_message(alice, room_id, "after bob left")
    assert put_state(alice, room_id, "m.room.name", {"name": "renamed later"}).status == 200
    assert visible_bodies(bob, room_id) == ["while bob is here"]
    assert not can_fetch(bob, room_id, after)
    state = bob.get(f"{V3}/rooms/{q(room_id)}/state")
    assert state.status == 200
    assert "m.room.name" not in {e["type"] for e in state.body}
    own = bob.get(f"{V3}/rooms/{q(room_id)}/state/m.room.member/{q(bob.user_id)}")
    assert own.body["membership"] == "leave"


def test_visibility_change_uses_the_more_open_setting_for_itself(people: tuple[Client, Client, Client]) -> None:
    alice, bob, _ = people
    room_id = room_with(alice, "shared")
    put_state(alice, room_id, "m.room.history_visibility", {"history_visibility": "joined"})
    send_message(alice, room_id, "hidden")
    join(bob, room_id)
    chunk = messages(bob, room_id, dir="f", limit=100)["chunk"]
    changes = [e for e in chunk if e["type"] == "m.room.history_visibility"]
    assert [c["content"]["history_visibility"] for c in changes] == ["shared", "joined"]
    assert "hidden" not in visible_bodies(bob, room_id)
