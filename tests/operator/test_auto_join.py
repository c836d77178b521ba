"""auto_join_rooms, with Synapse's companions: new accounts join the listed rooms,
missing local rooms are created (by the new user, or by auto_join_mxid_localpart's
user with a private preset, who then invites), guests follow auto_join_rooms_for_guests.
Also the defaults these servers keep: only admins publish rooms, and a disabled
user directory finds nobody."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.accounts import admin_register, custom_server, password_login
from tests.support.client import Client, q
from tests.support.databases import ENGINES
from tests.support.rooms import V3, create_room, get_state, new_user
from tests.support.server import RunningServer

PRIVATE: dict[str, Any] = {
    "auto_join_rooms": ["#lobby:test.local", "#staff:test.local", "#far:elsewhere.example"],
    "autocreate_auto_join_room_preset": "private_chat",
    "auto_join_mxid_localpart": "system",
    "auto_join_rooms_for_guests": False,
    "autocreate_auto_join_rooms_federated": False,
    "allow_guest_access": True,
    "room_list_publication_rules": None,  # Synapse's default: only server admins publish
    "user_directory": {"enabled": False},
}
PUBLIC: dict[str, Any] = {"auto_join_rooms": ["#welcome:test.local"], "allow_guest_access": True}


@pytest.fixture(scope="module", params=ENGINES)
def private_hs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with custom_server(tmp_path_factory.mktemp(f"hs-aj-private-{request.param}"), request.param,
                       **PRIVATE) as running:
        yield running


@pytest.fixture(scope="module", params=ENGINES)
def public_hs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with custom_server(tmp_path_factory.mktemp(f"hs-aj-public-{request.param}"), request.param,
                       **PUBLIC) as running:
        yield running


def joined(client: Client) -> set[str]:
    return set(client.get(f"{V3}/joined_rooms").body["joined_rooms"])


def room_of(client: Client, alias: str) -> str:
    response = client.get(f"{V3}/directory/room/{q(alias)}")
    assert response.status == 200, response
    return str(response.body["room_id"])


def creator_of(client: Client, room_id: str) -> str:
    state = client.get(f"{V3}/rooms/{q(room_id)}/state").body
    return str(next(e["sender"] for e in state if e["type"] == "m.room.create"))


def guest(server: RunningServer) -> Client:
    client = Client(server.base_url)
    registered = client.post(f"{V3}/register", {}, params={"kind": "guest"})
    assert registered.status == 200, registered
    client.access_token = registered.body["access_token"]
    return client


def test_private_rooms_are_made_by_the_auto_join_user_who_invites(private_hs: RunningServer) -> None:
    first = new_user(private_hs.base_url)
    lobby, staff = room_of(first, "#lobby:test.local"), room_of(first, "#staff:test.local")
    assert joined(first) == {lobby, staff}  # the remote alias was skipped
    create = get_state(first, lobby, "m.room.create").body
    assert create.get("m.federate") is False
    assert creator_of(first, lobby) == "@system:test.local"
    assert get_state(first, lobby, "m.room.join_rules").body["join_rule"] == "invite"
    # Made by @system, not by the first user, who was invited and joined.
    creator = first.get(f"{V3}/rooms/{q(lobby)}/members").body["chunk"]
    senders = {e["state_key"]: (e["sender"], e["content"]["membership"]) for e in creator}
    assert senders["@system:test.local"] == ("@system:test.local", "join")
    assert senders[first.user_id] == (first.user_id, "join")
    # Later accounts join the same rooms (invited by @system, since they are not public).
    second = new_user(private_hs.base_url)
    assert joined(second) == {lobby, staff}


def test_the_auto_join_user_is_reserved_and_cannot_log_in(private_hs: RunningServer) -> None:
    new_user(private_hs.base_url)  # make sure the rooms (and so @system) exist
    taken = Client(private_hs.base_url).post(f"{V3}/register", {"username": "system",
                                                                "auth": {"type": "m.login.dummy"}})
    assert (taken.status, taken.errcode) == (400, "M_USER_IN_USE")
    assert password_login(private_hs.base_url, "system", "anything").status == 403


def test_guests_are_left_out_when_configured(private_hs: RunningServer) -> None:
    assert joined(guest(private_hs)) == set()


def test_operator_registered_accounts_are_auto_joined(private_hs: RunningServer) -> None:
    registered = admin_register(private_hs, "operatormade")
    assert registered.status == 200, registered
    client = Client(private_hs.base_url, registered.body["access_token"], registered.body["user_id"])
    assert room_of(client, "#lobby:test.local") in joined(client)


def test_by_default_only_admins_publish_rooms(private_hs: RunningServer) -> None:
    alice = new_user(private_hs.base_url)
    room_id = create_room(alice, visibility="public")
    assert alice.get(f"{V3}/directory/list/room/{q(room_id)}").body == {"visibility": "private"}
    refused = alice.put(f"{V3}/directory/list/room/{q(room_id)}", {"visibility": "public"})
    assert (refused.status, refused.errcode) == (403, "M_FORBIDDEN")
    registered = admin_register(private_hs, "publisheradmin", admin=True)
    admin = Client(private_hs.base_url, registered.body["access_token"], registered.body["user_id"])
    published = create_room(admin, visibility="public")
    listed = {e["room_id"] for e in alice.get(f"{V3}/publicRooms").body["chunk"]}
    assert published in listed and room_id not in listed


def test_a_disabled_user_directory_finds_nobody(private_hs: RunningServer) -> None:
    alice, bob = new_user(private_hs.base_url), new_user(private_hs.base_url)
    # They share the auto-joined rooms, so an enabled directory would list bob.
    found = alice.post(f"{V3}/user_directory/search", {"search_term": bob.user_id[1:]})
    assert (found.status, found.body) == (200, {"results": [], "limited": False})
    assert Client(private_hs.base_url).post(f"{V3}/user_directory/search", {}).status == 401


def test_public_rooms_are_made_by_the_first_user_and_joined_by_the_rest(public_hs: RunningServer) -> None:
    first = new_user(public_hs.base_url)
    welcome = room_of(first, "#welcome:test.local")
    assert joined(first) == {welcome}
    assert get_state(first, welcome, "m.room.create").body.get("m.federate", True) is True
    members = first.get(f"{V3}/rooms/{q(welcome)}/members").body["chunk"]
    assert [e["state_key"] for e in members] == [first.user_id]
    assert creator_of(first, welcome) == first.user_id
    assert get_state(first, welcome, "m.room.join_rules").body["join_rule"] == "public"
    second = new_user(public_hs.base_url)
    assert joined(second) == {welcome}
    assert joined(guest(public_hs)) == {welcome}  # auto_join_rooms_for_guests defaults to true
