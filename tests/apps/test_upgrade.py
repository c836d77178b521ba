"""Room upgrades over HTTP: tombstone, predecessor, copied state, moved aliases, restricted old room."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from tests.support.client import Client, q
from tests.support.rooms import V3, create_room, get_state, join, new_user, send_message
from tests.support.server import RunningServer


def upgrade(client: Client, room_id: str, body: Any) -> Any:
    return client.post(f"{V3}/rooms/{q(room_id)}/upgrade", body)


def state_content(client: Client, room_id: str, event_type: str, state_key: str = "") -> Any:
    response = get_state(client, room_id, event_type, state_key)
    assert response.status == 200, (event_type, response)
    return response.body


def create_content(client: Client, room_id: str) -> dict[str, Any]:
    return state_content(client, room_id, "m.room.create")


@pytest.fixture(scope="module")
def people(server: RunningServer) -> tuple[Client, Client, Client]:
    return new_user(server.base_url), new_user(server.base_url), new_user(server.base_url)


@pytest.mark.parametrize("new_version", ["11", "12"])
def test_upgrade_moves_the_room(server: RunningServer, people: tuple[Client, Client, Client],
                                new_version: str) -> None:
    alice, bob, carol = people
    alias_name = f"up{secrets.token_hex(4)}"
    old = create_room(alice, preset="public_chat", room_version="10", name="Old name", topic="About",
                      room_alias_name=alias_name, visibility="public")
    alias = f"#{alias_name}:{server.server_name}"
    join(bob, old)
    join(carol, old)
    assert alice.post(f"{V3}/rooms/{q(old)}/ban", {"user_id": carol.user_id, "reason": "spam"}).status == 200
    send_message(bob, old, "before the upgrade")

    response = upgrade(alice, old, {"new_version": new_version})
    assert response.status == 200, response
    new = response.body["replacement_room"]
    assert new != old

    tombstone = state_content(bob, old, "m.room.tombstone")
    assert tombstone["replacement_room"] == new
    created = create_content(alice, new)
    assert created["room_version"] == new_version
    assert created["predecessor"]["room_id"] == old
    assert state_content(alice, new, "m.room.name")["name"] == "Old name"
    assert state_content(alice, new, "m.room.topic")["topic"] == "About"
    assert state_content(alice, new, "m.room.join_rules")["join_rule"] == "public"
    assert state_content(alice, new, "m.room.history_visibility")["history_visibility"] == "shared"
    assert state_content(alice, new, "m.room.member", str(carol.user_id))["membership"] == "ban"
    assert state_content(alice, new, "m.room.canonical_alias")["alias"] == alias

    resolved = bob.get(f"{V3}/directory/room/{q(alias)}")
    assert resolved.status == 200 and resolved.body["room_id"] == new
    assert "alias" not in state_content(alice, old, "m.room.canonical_alias")
    assert bob.get(f"{V3}/directory/list/room/{q(new)}").body["visibility"] == "public"
    assert bob.get(f"{V3}/directory/list/room/{q(old)}").body["visibility"] == "private"

    old_levels = state_content(alice, old, "m.room.power_levels")
    assert old_levels["events_default"] >= 50 and old_levels["invite"] >= 50
    refused = bob.put(f"{V3}/rooms/{q(old)}/send/m.room.message/after", {"msgtype": "m.text", "body": "x"})
    assert (refused.status, refused.errcode) == (403, "M_FORBIDDEN")

    new_levels = state_content(alice, new, "m.room.power_levels")
    if new_version == "12":
        assert alice.user_id not in new_levels.get("users", {})
    else:
        assert new_levels["users"][alice.user_id] == 100
    join(bob, new)
    send_message(bob, new, "in the new room")
    assert join(carol, new, expect=403).body["errcode"] == "M_FORBIDDEN"


def test_upgrade_by_a_user_below_the_state_levels(people: tuple[Client, Client, Client]) -> None:
    """A user allowed the tombstone but not all state gets the old levels back, as they were."""
    alice, bob, _ = people
    levels = {"users": {alice.user_id: 100, bob.user_id: 60}, "state_default": 100,
              "events": {"m.room.tombstone": 60, "m.room.name": 100, "m.room.power_levels": 100}}
    old = create_room(alice, preset="public_chat", room_version="10", name="Strict",
                      power_level_content_override=levels)
    join(bob, old)
    response = upgrade(bob, old, {"new_version": "11"})
    assert response.status == 200, response
    new = response.body["replacement_room"]
    assert state_content(bob, new, "m.room.name")["name"] == "Strict"
    final = state_content(bob, new, "m.room.power_levels")
    assert final["users"] == levels["users"] and final["state_default"] == 100


def test_members_without_power_cannot_upgrade(server: RunningServer,
                                              people: tuple[Client, Client, Client]) -> None:
    alice, bob, _ = people
    room = create_room(alice, preset="public_chat")
    join(bob, room)
    response = upgrade(bob, room, {"new_version": "12"})
    assert (response.status, response.errcode) == (403, "M_FORBIDDEN")
    stranger = new_user(server.base_url)
    response = upgrade(stranger, room, {"new_version": "12"})
    assert (response.status, response.errcode) == (403, "M_FORBIDDEN")
    assert get_state(alice, room, "m.room.tombstone").status == 404


@pytest.mark.parametrize("body,status,errcode", [
    ({}, 400, "M_MISSING_PARAM"),
    ({"new_version": 12}, 400, "M_BAD_JSON"),
    ({"new_version": None}, 400, "M_BAD_JSON"),
    ({"new_version": "99"}, 400, "M_UNSUPPORTED_ROOM_VERSION"),
    ({"new_version": "12", "additional_creators": "@a:b"}, 400, "M_BAD_JSON"),
    ({"new_version": "12", "additional_creators": ["not a user"]}, 400, "M_BAD_JSON"),
])
def test_bad_upgrade_bodies(people: tuple[Client, Client, Client], body: Any, status: int,
                            errcode: str) -> None:
    alice = people[0]
    room = create_room(alice)
    response = upgrade(alice, room, body)
    assert (response.status, response.errcode) == (status, errcode), response


def test_malformed_upgrade_requests(people: tuple[Client, Client, Client]) -> None:
    alice = people[0]
    room = create_room(alice)
    for raw, errcode in ((b"{not json", "M_NOT_JSON"), (b"[]", "M_NOT_JSON"), (b"", "M_NOT_JSON")):
        response = alice.request("POST", f"{V3}/rooms/{q(room)}/upgrade", raw=raw)
        assert (response.status, response.errcode) == (400, errcode), (raw, response)
    response = upgrade(alice, "not a room", {"new_version": "12"})
    assert (response.status, response.errcode) == (400, "M_INVALID_PARAM")
    response = upgrade(alice, "!unknown:test.local", {"new_version": "12"})
    assert (response.status, response.errcode) == (403, "M_FORBIDDEN")
    response = alice.post(f"{V3}/rooms/{q(room)}/upgrade", {"new_version": "12"}, token=False)
    assert (response.status, response.errcode) == (401, "M_MISSING_TOKEN")


def test_v12_upgrade_with_additional_creators(people: tuple[Client, Client, Client]) -> None:
    alice, bob, _ = people
    room = create_room(alice, preset="public_chat", room_version="11")
    response = upgrade(alice, room, {"new_version": "12", "additional_creators": [bob.user_id]})
    assert response.status == 200, response
    created = create_content(alice, response.body["replacement_room"])
    assert created["additional_creators"] == [bob.user_id]
