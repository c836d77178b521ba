"""Synapse's room and profile settings, black-box on both engines:
forget_rooms_on_leave, require_auth_for_profile_requests (with
limit_profile_requests_to_users_who_share_rooms), user_directory,
alias_creation_rules and room_list_publication_rules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.accounts import admin_register, custom_server
from tests.support.client import Client, q, random_localpart
from tests.support.databases import ENGINES
from tests.support.rooms import V3, create_room, invite, join, leave, new_user
from tests.support.server import RunningServer
from tests.support.sync import sync

SETTINGS: dict[str, Any] = {
    "forget_rooms_on_leave": True,
    "require_auth_for_profile_requests": True,
    "limit_profile_requests_to_users_who_share_rooms": True,
    "user_directory": {"search_all_users": True},
    "alias_creation_rules": [{"alias": "#blocked-*", "action": "deny"}, {"action": "allow"}],
    "room_list_publication_rules": [
        {"user_id": "@pub*", "action": "allow"},
        {"alias": "#listed-*", "action": "allow"},
        {"action": "deny"},
    ],
}
INCLUDE_LEAVE = {"room": {"include_leave": True}}


@pytest.fixture(scope="module", params=ENGINES)
def hs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    directory = tmp_path_factory.mktemp(f"hs-settings-{request.param}")
    with custom_server(directory, request.param, **SETTINGS) as running:
        yield running


def left_rooms(client: Client) -> set[str]:
    return set(sync(client, sync_filter=INCLUDE_LEAVE).get("rooms", {}).get("leave", {}))


def test_leaving_kicked_or_banned_forgets_the_room(hs: RunningServer) -> None:
    alice, bob, carol, dave = (new_user(hs.base_url) for _ in range(4))
    room_id = create_room(alice, preset="public_chat")
    for user in (bob, carol, dave):
        join(user, room_id)
    leave(bob, room_id)
    assert alice.post(f"{V3}/rooms/{q(room_id)}/kick", {"user_id": carol.user_id}).status == 200
    assert alice.post(f"{V3}/rooms/{q(room_id)}/ban", {"user_id": dave.user_id}).status == 200
    for user in (bob, carol, dave):
        assert room_id not in left_rooms(user)
    # Rejoining brings the room back.
    join(bob, room_id)
    assert room_id in sync(bob).get("rooms", {}).get("join", {})


def test_rejecting_an_invite_does_not_forget(hs: RunningServer) -> None:
    """Synapse forgets only when a user stops being joined."""
    alice, erin = new_user(hs.base_url), new_user(hs.base_url)
    room_id = create_room(alice)
    invite(alice, room_id, erin.user_id)
    leave(erin, room_id)
    assert room_id in left_rooms(erin)


def test_profiles_need_a_token_and_a_shared_room(hs: RunningServer) -> None:
    alice, stranger, friend = (new_user(hs.base_url) for _ in range(3))
    anonymous = Client(hs.base_url)
    for path in (f"{V3}/profile/{q(alice.user_id)}", f"{V3}/profile/{q(alice.user_id)}/displayname"):
        missing = anonymous.get(path)
        assert (missing.status, missing.errcode) == (401, "M_MISSING_TOKEN")
        refused = stranger.get(path)
        assert (refused.status, refused.errcode) == (403, "M_FORBIDDEN")
        assert alice.get(path).status == 200  # your own profile
    room_id = create_room(alice, preset="public_chat")
    join(friend, room_id)
    assert friend.get(f"{V3}/profile/{q(alice.user_id)}").body["displayname"] == alice.user_id[1:].split(":")[0]
    bad = Client(hs.base_url, "not-a-token").get(f"{V3}/profile/{q(alice.user_id)}")
    assert (bad.status, bad.errcode) == (401, "M_UNKNOWN_TOKEN")


def test_search_all_users_finds_users_sharing_no_room(hs: RunningServer) -> None:
    searcher = new_user(hs.base_url)
    loner = new_user(hs.base_url, random_localpart("loner"))
    found = searcher.post(f"{V3}/user_directory/search", {"search_term": loner.user_id[1:7]}).body
    assert loner.user_id in [entry["user_id"] for entry in found["results"]]


def test_alias_creation_rules(hs: RunningServer) -> None:
    alice = new_user(hs.base_url)
    room_id = create_room(alice)
    name = random_localpart()
    blocked = alice.put(f"{V3}/directory/room/{q(f'#blocked-{name}:test.local')}", {"room_id": room_id})
    assert (blocked.status, blocked.errcode) == (403, "M_FORBIDDEN")
    assert alice.put(f"{V3}/directory/room/{q(f'#fine-{name}:test.local')}", {"room_id": room_id}).status == 200
    before = set(alice.get(f"{V3}/joined_rooms").body["joined_rooms"])
    refused = alice.post(f"{V3}/createRoom", {"room_alias_name": f"blocked-{name}2"})
    assert (refused.status, refused.errcode) == (403, "M_FORBIDDEN")
    assert set(alice.get(f"{V3}/joined_rooms").body["joined_rooms"]) == before  # no half-made room


def public_room_ids(client: Client) -> set[str]:
    return {entry["room_id"] for entry in client.get(f"{V3}/publicRooms").body["chunk"]}


def test_room_list_publication_rules(hs: RunningServer) -> None:
    publisher = new_user(hs.base_url, random_localpart("pub"))
    alice = new_user(hs.base_url)
    listed = create_room(publisher, visibility="public")
    unlisted = create_room(alice, visibility="public")  # created, but not published
    by_alias = create_room(alice, visibility="public", room_alias_name=f"listed-{random_localpart()}")
    rooms = public_room_ids(alice)
    assert listed in rooms and by_alias in rooms and unlisted not in rooms
    refused = alice.put(f"{V3}/directory/list/room/{q(unlisted)}", {"visibility": "public"})
    assert (refused.status, refused.errcode) == (403, "M_FORBIDDEN")
    assert alice.get(f"{V3}/directory/list/room/{q(unlisted)}").body == {"visibility": "private"}
    # Unpublishing is always allowed; server admins may publish anything.
    assert alice.put(f"{V3}/directory/list/room/{q(by_alias)}", {"visibility": "private"}).status == 200
    localpart = random_localpart("admin")
    registered = admin_register(hs, localpart, admin=True)
    admin = Client(hs.base_url, registered.body["access_token"], registered.body["user_id"])
    assert admin.put(f"{V3}/directory/list/room/{q(unlisted)}", {"visibility": "public"}).status == 200
    assert unlisted in public_room_ids(alice)
