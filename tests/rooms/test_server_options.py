"""Room behaviour that depends on server options: rc_message and guest access."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.client import Client, q
from tests.support.rooms import V3, create_room, new_user
from tests.support.server import RunningServer, custom_server


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with custom_server(
        tmp_path_factory.mktemp("rc-message"), "sqlite3",
        rc_message={"per_second": 0.01, "burst_count": 3}, allow_guest_access=True,
    ) as running:
        yield running


def test_sends_past_the_burst_are_429(limited_server: RunningServer) -> None:
    alice = new_user(limited_server.base_url)
    room_id = create_room(alice)
    statuses = []
    for i in range(5):
        response = alice.put(f"{V3}/rooms/{q(room_id)}/send/m.room.message/rl{i}", {"body": str(i)})
        statuses.append(response.status)
        if response.status == 429:
            assert response.errcode == "M_LIMIT_EXCEEDED"
            assert response.body["retry_after_ms"] > 0
    # createRoom counted against rc_message too (as in Synapse), so two sends fit the burst of 3.
    assert statuses == [200, 200, 429, 429, 429]
    # A retry of an already-sent transaction is not a new send, so it is not limited.
    retry = alice.put(f"{V3}/rooms/{q(room_id)}/send/m.room.message/rl0", {"body": "0"})
    assert retry.status == 200
    other = new_user(limited_server.base_url)
    assert other.put(f"{V3}/rooms/{q(create_room(other))}/send/m.room.message/x", {}).status == 200


def test_guests_join_only_rooms_that_allow_guests(limited_server: RunningServer) -> None:
    alice = new_user(limited_server.base_url)
    guest = Client(limited_server.base_url)
    registered = guest.post(f"{V3}/register", {}, params={"kind": "guest"})
    assert registered.status == 200, registered
    guest.access_token = registered.body["access_token"]
    closed = create_room(alice, preset="public_chat")
    refused = guest.post(f"{V3}/join/{q(closed)}", {})
    assert (refused.status, refused.errcode) == (403, "M_GUEST_ACCESS_FORBIDDEN")
    open_room = create_room(alice, preset="public_chat",
                            initial_state=[{"type": "m.room.guest_access", "content": {"guest_access": "can_join"}}])
    assert guest.post(f"{V3}/join/{q(open_room)}", {}).status == 200
    assert guest.post(f"{V3}/createRoom", {}).status == 403
