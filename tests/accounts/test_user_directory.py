"""POST /user_directory/search: the searcher always finds themself; strangers stay hidden."""

from __future__ import annotations

import pytest

from tests.support.accounts import V3, localpart_of
from tests.support.client import Client, q, random_localpart, register_user
from tests.support.rooms import create_room, invite, join, leave
from tests.support.server import RunningServer


def test_search_finds_yourself_by_id_and_displayname(server: RunningServer) -> None:
    alice = register_user(server.base_url, random_localpart("alice"))
    alice.put(f"{V3}/profile/{q(alice.user_id)}/displayname", {"displayname": "Wonder Land"})
    for term in (localpart_of(alice.user_id)[:7], "wonder", "LAND"):
        response = alice.post(f"{V3}/user_directory/search", {"search_term": term})
        assert response.status == 200, response
        assert response.body["results"] == [{"user_id": alice.user_id, "display_name": "Wonder Land"}]
        assert response.body["limited"] is False


def test_strangers_sharing_no_room_are_not_found(server: RunningServer) -> None:
    stranger = register_user(server.base_url, random_localpart("stranger"))
    alice = register_user(server.base_url)
    response = alice.post(f"{V3}/user_directory/search", {"search_term": localpart_of(stranger.user_id)})
    assert response.status == 200 and response.body["results"] == []


def test_like_wildcards_are_literal(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    response = alice.post(f"{V3}/user_directory/search", {"search_term": "%"})
    assert response.body["results"] == []
    limited = alice.post(f"{V3}/user_directory/search", {"search_term": "", "limit": 0})
    assert limited.body == {"results": [], "limited": True}


@pytest.mark.parametrize("raw", [b"nope", b"{}", b"{\"search_term\": 5}",
                                 b"{\"search_term\": \"a\", \"limit\": \"ten\"}",
                                 b"{\"search_term\": \"a\", \"limit\": -1}"])
def test_malformed_searches_are_client_errors(server: RunningServer, raw: bytes) -> None:
    alice = register_user(server.base_url)
    response = alice.post(f"{V3}/user_directory/search", raw=raw)
    assert 400 <= response.status < 500, response


def search_ids(client: Client, term: str) -> list[str]:
    response = client.post(f"{V3}/user_directory/search", {"search_term": term})
    assert response.status == 200, response
    return [result["user_id"] for result in response.body["results"]]


def test_users_sharing_a_room_find_each_other_until_one_leaves(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url, random_localpart("roommate"))
    carol = register_user(server.base_url)
    room_id = create_room(alice, preset="private_chat")
    invite(alice, room_id, bob.user_id)
    join(bob, room_id)
    bob_name = localpart_of(bob.user_id)
    assert search_ids(alice, bob_name) == [bob.user_id]
    assert search_ids(bob, localpart_of(alice.user_id)) == [alice.user_id]
    assert search_ids(carol, bob_name) == []
    leave(bob, room_id)
    assert search_ids(alice, bob_name) == []


def test_members_of_public_rooms_are_found_by_anyone(server: RunningServer) -> None:
    host = register_user(server.base_url, random_localpart("publichost"))
    create_room(host, preset="public_chat", visibility="public")
    stranger = register_user(server.base_url)
    assert search_ids(stranger, localpart_of(host.user_id)) == [host.user_id]
    hidden = register_user(server.base_url, random_localpart("privatehost"))
    create_room(hidden, preset="private_chat")
    assert search_ids(stranger, localpart_of(hidden.user_id)) == []
