"""Membership hygiene: who left shows in pending_removals; past the grace, messages wait for the removal."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.client import q, register_user
from tests.support.databases import drop_database
from tests.support.mls import MlsDevice, create_mls_room, login, mls_room_with
from tests.support.server import RunningServer, start_test_server
from tests.support.sync import leave


@pytest.fixture(scope="module", params=["sqlite3", pytest.param("psycopg2", marks=pytest.mark.postgres)])
def no_grace_server(request, tmp_path_factory) -> Iterator[RunningServer]:
    """A server whose mls_removal_grace is zero (a departure blocks messages at once) and whose
    max_group_size is 3."""
    running, database = start_test_server(tmp_path_factory.mktemp("mls-grace"), request.param,
                                          mls_removal_grace=0, max_group_size=3)
    try:
        yield running
    finally:
        running.stop()
        drop_database(database)


def pending(device: MlsDevice, body: dict) -> list[dict]:
    return body.get("org.vignette.mls", {}).get("rooms", {}).get(device.room_id, {}).get("pending_removals", [])


def sync_until_pending(device: MlsDevice) -> list[dict]:
    """Long-poll until the departure (marked after the leave event persists) reaches this device."""
    for _ in range(10):
        removals = pending(device, device.sync(timeout=5000))
        if removals:
            return removals
    return []


def test_within_grace_a_departure_is_reported_and_messages_flow(server) -> None:
    alice, bob, carol = (MlsDevice(register_user(server.base_url)) for _ in range(3))
    mls_room_with(alice, bob, carol)
    leave(carol.http, alice.room_id)
    assert [(p["user_id"], p["device_id"]) for p in sync_until_pending(alice)] == [(carol.user_id, carol.device_id)]
    alice.send(b"within the grace period")  # the default grace is an hour
    assert bob.received(bob.sync()) == [b"within the grace period"]


def test_past_grace_messages_are_refused_until_the_removal_is_committed(no_grace_server) -> None:
    server = no_grace_server
    alice, bob, carol = (MlsDevice(register_user(server.base_url)) for _ in range(3))
    room_id = mls_room_with(alice, bob, carol)
    leave(carol.http, room_id)
    removals = sync_until_pending(bob)
    assert [(p["user_id"], p["device_id"]) for p in removals] == [(carol.user_id, carol.device_id)]
    refused = alice.send(b"carol must not read this", expect=403)
    assert refused.body["errcode"] == "M_FORBIDDEN"
    # bob commits carol's removal; then messages flow again, and carol cannot read them.
    assert bob.commit_and_apply(bob.group.remove_members([carol.mls.signing_identity()])).status == 200
    body = alice.sync()
    alice.apply_commits(body)
    assert pending(alice, body) == []
    alice.send(b"after carol's removal")
    assert bob.received(bob.sync()) == [b"after carol's removal"]
    carol_body = carol.sync()
    assert carol.received(carol_body) == []


def test_a_deleted_device_becomes_a_pending_removal(no_grace_server) -> None:
    server = no_grace_server
    alice, bob = MlsDevice(register_user(server.base_url)), MlsDevice(register_user(server.base_url))
    room_id = mls_room_with(alice, bob)
    response = bob.http.post("/_matrix/client/v3/logout", {})
    assert response.status == 200
    assert [(p["user_id"], p["device_id"]) for p in sync_until_pending(alice)] == [(bob.user_id, bob.device_id)]
    alice.send(b"nobody left to read", expect=403)
    assert q(room_id)


def test_max_group_size_bounds_the_groups_devices(no_grace_server) -> None:
    server = no_grace_server
    alice, bob = MlsDevice(register_user(server.base_url)), MlsDevice(register_user(server.base_url))
    bobs = [bob, login(server.base_url, bob.http), login(server.base_url, bob.http)]
    room_id = create_mls_room(alice.http)
    assert alice.http.post(f"/_matrix/client/v3/rooms/{q(room_id)}/invite", {"user_id": bob.user_id}).status == 200
    assert bob.http.post(f"/_matrix/client/v3/join/{q(room_id)}", {}).status == 200
    for device in bobs:
        device.upload_key_packages(1)
    alice.create_group(room_id)
    alice.checkpoint()
    too_many = alice.group.add_members(alice.claim({bob.user_id: [d.device_id for d in bobs]}))
    refused = alice.post_commit(too_many)
    assert refused.status == 403 and refused.errcode == "M_FORBIDDEN", refused
    assert "3" in refused.body["error"]
    alice.discard_pending()
    fits = alice.group.add_members(alice.claim({bob.user_id: [d.device_id for d in bobs[:2]]}))
    assert alice.commit_and_apply(fits).status == 200
