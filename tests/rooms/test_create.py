"""POST /createRoom: presets, options, room versions and the event sequence."""

from __future__ import annotations

import pytest

from tests.support.client import Client, q
from tests.support.rooms import V3, create_room, get_state, messages, new_user
from tests.support.server import RunningServer


@pytest.fixture(scope="module")
def alice(server: RunningServer) -> Client:
    return new_user(server.base_url)


@pytest.fixture(scope="module")
def bob(server: RunningServer) -> Client:
    return new_user(server.base_url)


def state_map(client: Client, room_id: str) -> dict[tuple[str, str], dict]:
    response = client.get(f"{V3}/rooms/{q(room_id)}/state")
    assert response.status == 200, response
    return {(e["type"], e["state_key"]): e for e in response.body}


@pytest.mark.parametrize("version", [str(v) for v in range(1, 13)])
def test_every_room_version_can_be_created(alice: Client, version: str) -> None:
    room_id = create_room(alice, room_version=version)
    state = state_map(alice, room_id)
    assert state[("m.room.create", "")]["content"]["room_version"] == version
    if version == "12":
        create_id = state[("m.room.create", "")]["event_id"]
        assert room_id == "!" + create_id[1:]
        assert ":" not in room_id
    else:
        assert room_id.endswith(":test.local")
    if int(version) < 11:
        assert state[("m.room.create", "")]["content"]["creator"] == alice.user_id


def test_default_version_is_the_configured_one(alice: Client) -> None:
    room_id = create_room(alice)
    assert state_map(alice, room_id)[("m.room.create", "")]["content"]["room_version"] == "12"


@pytest.mark.parametrize("version", ["13", "0", "abc"])
def test_unknown_room_version_is_rejected(alice: Client, version: object) -> None:
    response = alice.post(f"{V3}/createRoom", {"room_version": version})
    assert response.status == 400
    assert response.errcode == "M_UNSUPPORTED_ROOM_VERSION"


@pytest.mark.parametrize("version", [12, 1, None, ["12"], {"v": "12"}, True])
def test_room_version_that_is_not_a_string_is_bad_json(alice: Client, version: object) -> None:
    """Not a version we lack but malformed JSON, as Synapse answers."""
    response = alice.post(f"{V3}/createRoom", {"room_version": version})
    assert (response.status, response.errcode) == (400, "M_BAD_JSON"), version


def test_public_chat_preset(alice: Client) -> None:
    room_id = create_room(alice, preset="public_chat")
    state = state_map(alice, room_id)
    assert state[("m.room.join_rules", "")]["content"]["join_rule"] == "public"
    assert state[("m.room.history_visibility", "")]["content"]["history_visibility"] == "shared"
    assert ("m.room.guest_access", "") not in state


@pytest.mark.parametrize("preset", ["private_chat", "trusted_private_chat"])
def test_private_presets(alice: Client, bob: Client, preset: str) -> None:
    room_id = create_room(alice, preset=preset, invite=[bob.user_id], room_version="11")
    state = state_map(alice, room_id)
    assert state[("m.room.join_rules", "")]["content"]["join_rule"] == "invite"
    assert state[("m.room.guest_access", "")]["content"]["guest_access"] == "can_join"
    assert state[("m.room.member", bob.user_id)]["content"]["membership"] == "invite"
    users = state[("m.room.power_levels", "")]["content"]["users"]
    assert users[alice.user_id] == 100
    assert users.get(bob.user_id) == (100 if preset == "trusted_private_chat" else None)


def test_trusted_private_chat_v12_makes_invitees_creators(alice: Client, bob: Client) -> None:
    room_id = create_room(alice, preset="trusted_private_chat", invite=[bob.user_id])
    state = state_map(alice, room_id)
    assert state[("m.room.create", "")]["content"]["additional_creators"] == [bob.user_id]
    assert state[("m.room.power_levels", "")]["content"]["users"] == {}


def test_visibility_public_defaults_to_public_chat_and_lists_the_room(alice: Client) -> None:
    room_id = create_room(alice, visibility="public", name="Listed room")
    state = state_map(alice, room_id)
    assert state[("m.room.join_rules", "")]["content"]["join_rule"] == "public"
    listed = alice.get(f"{V3}/publicRooms").body["chunk"]
    assert room_id in {entry["room_id"] for entry in listed}
    assert alice.get(f"{V3}/directory/list/room/{q(room_id)}").body == {"visibility": "public"}


def test_name_topic_alias_initial_state_and_overrides(server: RunningServer, alice: Client) -> None:
    room_id = create_room(
        alice, name="The name", topic="The topic", room_alias_name="created-alias",
        initial_state=[{"type": "m.room.history_visibility", "content": {"history_visibility": "joined"}},
                       {"type": "org.example.custom", "state_key": "k", "content": {"x": 1}}],
        creation_content={"m.federate": False},
        power_level_content_override={"events_default": 20},
    )
    state = state_map(alice, room_id)
    assert state[("m.room.name", "")]["content"]["name"] == "The name"
    assert state[("m.room.topic", "")]["content"]["topic"] == "The topic"
    assert state[("m.room.topic", "")]["content"]["m.topic"] == {
        "m.text": [{"body": "The topic", "mimetype": "text/plain"}]}
    assert state[("m.room.canonical_alias", "")]["content"]["alias"] == "#created-alias:test.local"
    assert state[("m.room.history_visibility", "")]["content"]["history_visibility"] == "joined"
    assert state[("org.example.custom", "k")]["content"] == {"x": 1}
    assert state[("m.room.create", "")]["content"]["m.federate"] is False
    assert state[("m.room.power_levels", "")]["content"]["events_default"] == 20
    resolved = alice.get(f"{V3}/directory/room/{q('#created-alias:test.local')}")
    assert resolved.body["room_id"] == room_id


def test_event_order_matches_the_spec(alice: Client, bob: Client) -> None:
    room_id = create_room(alice, name="n", topic="t", room_alias_name="ordered", invite=[bob.user_id],
                          initial_state=[{"type": "m.room.encryption",
                                          "content": {"algorithm": "m.megolm.v1.aes-sha2"}}])
    chunk = messages(alice, room_id, dir="f", limit=50)["chunk"]
    types = [e["type"] for e in chunk]
    assert types == [
        "m.room.create", "m.room.member", "m.room.power_levels", "m.room.canonical_alias",
        "m.room.join_rules", "m.room.history_visibility", "m.room.guest_access",
        "m.room.encryption", "m.room.name", "m.room.topic", "m.room.member",
    ]


def test_is_direct_marks_the_invite(alice: Client, bob: Client) -> None:
    room_id = create_room(alice, is_direct=True, invite=[bob.user_id])
    member = get_state(alice, room_id, "m.room.member", bob.user_id)
    assert member.body["is_direct"] is True


def test_taken_alias_is_room_in_use(alice: Client) -> None:
    create_room(alice, room_alias_name="taken-once")
    response = alice.post(f"{V3}/createRoom", {"room_alias_name": "taken-once"})
    assert (response.status, response.errcode) == (400, "M_ROOM_IN_USE")


@pytest.mark.parametrize("body", [
    {"preset": "nope"}, {"visibility": "secret"}, {"invite": "not-a-list"}, {"invite": ["nobody"]},
    {"initial_state": [{"content": {}}]}, {"initial_state": "x"}, {"name": 5},
    {"creation_content": []}, {"power_level_content_override": {"ban": "high"}},
    {"is_direct": "yes"}, {"room_alias_name": "with:colon"},
    {"initial_state": [{"type": "m.room.join_rules", "content": {"join_rule": 3}}]},
])
def test_bad_bodies_are_400(alice: Client, body: dict) -> None:
    response = alice.post(f"{V3}/createRoom", body)
    assert response.status == 400, response
    assert response.errcode in ("M_BAD_JSON", "M_INVALID_PARAM", "M_NOT_JSON")


def test_non_json_body(alice: Client) -> None:
    response = alice.request("POST", f"{V3}/createRoom", raw=b"{nope")
    assert (response.status, response.errcode) == (400, "M_NOT_JSON")


def test_needs_a_token(server: RunningServer) -> None:
    response = Client(server.base_url).post(f"{V3}/createRoom", {})
    assert (response.status, response.errcode) == (401, "M_MISSING_TOKEN")


def test_identical_concurrent_creates_get_distinct_v12_rooms(server: RunningServer) -> None:
    """v12 room IDs are create-event hashes; identical requests must still make distinct rooms."""
    from concurrent.futures import ThreadPoolExecutor

    carol = new_user(server.base_url)
    clients = [Client(server.base_url, access_token=carol.access_token) for _ in range(12)]

    def create(client: Client) -> tuple[int, str | None]:
        response = client.post(f"{V3}/createRoom", {"preset": "private_chat", "room_version": "12"})
        return response.status, response.body.get("room_id")

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(create, clients))
    assert [status for status, _ in results] == [200] * 12
    assert len({room_id for _, room_id in results}) == 12
