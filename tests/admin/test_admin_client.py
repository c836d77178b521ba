"""A real admin client drives the admin API: matrix-synapse-admin (PyPI, synapse_admin),
a wrapper written against Synapse's documented endpoints. (matrix-admin-sdk, the other
candidate, needs Python < 3.11 and does not install here.)

The client builds IDs from the host it talks to, so this server's name is 127.0.0.1, and
rooms use version 10 (room IDs with a server part).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from synapse_admin import Room, User
from synapse_admin.base import SynapseException

from tests.support.accounts import custom_server
from tests.support.admin import new_admin
from tests.support.client import random_localpart, register_user
from tests.support.databases import ENGINES
from tests.support.rooms import create_room, join, send_message
from tests.support.server import RunningServer

SERVER_NAME = "127.0.0.1"


@pytest.fixture(scope="module", params=ENGINES)
def ip_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    directory: Path = tmp_path_factory.mktemp(f"hs-admin-client-{request.param}")
    with custom_server(directory, request.param, server_name=SERVER_NAME) as running:
        yield running


def clients(server: RunningServer, token: str) -> tuple[User, Room]:
    port = server.config["listeners"][0]["port"]
    options = {"server_addr": SERVER_NAME, "server_port": port, "access_token": token, "server_protocol": "http://"}
    return User(**options), Room(**options)


def test_users_through_the_client(ip_server: RunningServer) -> None:
    admin = new_admin(ip_server)
    assert admin.access_token
    users, _ = clients(ip_server, admin.access_token)
    localpart = random_localpart("sdk")
    assert users.create_modify(localpart, password="pass word sdk", displayname="From the SDK") is True
    queried = users.query(localpart)
    assert queried["name"] == f"@{localpart}:{SERVER_NAME}" and queried["displayname"] == "From the SDK"
    listed = users.lists(name=localpart)
    assert listed.total == 1 and listed[0]["name"] == queried["name"]
    assert users.is_admin(localpart) is False
    assert users.set_admin(localpart, True) == (True, True) and users.is_admin(localpart) is True
    assert users.reset_password(localpart, "another pass word") is True
    token = users.login(localpart)
    member = register_user(ip_server.base_url)
    room_id = create_room(member, room_version="10")
    assert users.joined_room(member.user_id) == [room_id]
    assert users.active_sessions(member.user_id)[0]["ip"] == "127.0.0.1"
    devices = users.devices.lists(member.user_id)
    assert [d["device_id"] for d in devices] == [member.device_id]
    assert users.devices.update(member.user_id, member.device_id, "Renamed") is True
    assert users.devices.show(member.user_id, member.device_id)["display_name"] == "Renamed"
    assert isinstance(token, str) and token
    assert users.deactivate(localpart) is True and users.query(localpart)["deactivated"] is True
    tokens = users.registration_tokens
    created = tokens.create(token=random_localpart("t"), uses_allowed=2)
    assert tokens.query(created["token"])["uses_allowed"] == 2
    assert tokens.update(created["token"], uses_allowed=5)["uses_allowed"] == 5
    assert created["token"] in [t["token"] for t in tokens.lists()]
    assert tokens.delete(created["token"]) is True


def test_rooms_through_the_client(ip_server: RunningServer) -> None:
    admin = new_admin(ip_server)
    assert admin.access_token
    _, rooms = clients(ip_server, admin.access_token)
    owner = register_user(ip_server.base_url)
    guest = register_user(ip_server.base_url)
    name = random_localpart("sdkroom")
    room_id = create_room(owner, room_version="10", name=name, preset="public_chat")
    join(guest, room_id)
    send_message(owner, room_id, "hello")
    found = rooms.lists(search=name)
    assert found.total == 1 and found[0]["room_id"] == room_id
    assert rooms.details(room_id)["joined_members"] == 2
    assert sorted(rooms.list_members(room_id)) == sorted([owner.user_id, guest.user_id])
    assert any(e["type"] == "m.room.create" for e in rooms.get_state(room_id))
    assert len(rooms.forward_extremities_check(room_id)) == 1
    delete_id = rooms.delete_async(room_id, block=True)
    deadline = time.monotonic() + 120
    while (status := rooms.delete_status_id(delete_id))["status"] not in ("complete", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert status["status"] == "complete"
    assert sorted(status["shutdown_room"]["kicked_users"]) == sorted([owner.user_id, guest.user_id])
    with pytest.raises(SynapseException):
        rooms.details(room_id)


def test_a_non_admin_is_refused_by_the_client(ip_server: RunningServer) -> None:
    user = register_user(ip_server.base_url)
    assert user.access_token
    users, rooms = clients(ip_server, user.access_token)
    with pytest.raises(SynapseException) as refused:
        users.lists()
    assert refused.value.code == "M_FORBIDDEN"
    with pytest.raises(SynapseException):
        rooms.lists()
