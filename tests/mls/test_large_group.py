"""1,500 members: one commit adds 1,500 KeyPackages, the Welcome reaches every device, and so does a message.

The 1,500 devices belong to one user (each logged in with /login: its own device ID, so its
own ``<user_id>|<device_id>`` identity); a room of 1,500 users would test joins, not MLS.
All are thin clients that check delivery; a handful also join from the Welcome and decrypt.
About a minute on SQLite on a 2-CPU machine, most of it the 1,500 logins and syncs.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.client import Client, q, register_user
from tests.support.databases import drop_database
from tests.support.mls import KP_ALGORITHM, MLS_PREFIX, MlsDevice, create_mls_room, login
from tests.support.server import RunningServer, start_test_server
from tests.support.sync import invite, join

MEMBERS = 1500
JOINERS = 5


@pytest.fixture(scope="module")
def big_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # The creator's device plus 1,500 added ones: 1,501 leaves.
    running, database = start_test_server(tmp_path_factory.mktemp("mls-1500"), "sqlite3",
                                          max_group_size=MEMBERS + 1)
    try:
        yield running
    finally:
        running.stop()
        drop_database(database)


def thin_sync(client: Client, since: str | None) -> dict:
    params: dict = {"timeout": 0}
    if since:
        params["since"] = since
    response = client.get("/_matrix/client/v3/sync", params=params)
    assert response.status == 200, response
    return response.body


@pytest.mark.slow
def test_a_group_of_1500(big_server: RunningServer) -> None:
    base_url = big_server.base_url
    alice = MlsDevice(register_user(base_url))
    crowd_user = register_user(base_url)
    room_id = create_mls_room(alice.http)
    invite(alice.http, room_id, str(crowd_user.user_id))
    join(crowd_user, room_id)

    def new_device(_: int) -> MlsDevice:
        device = login(base_url, crowd_user)
        device.upload_key_packages(1, fallback=False)
        device.since = thin_sync(device.http, None)["next_batch"]
        return device

    with ThreadPoolExecutor(8) as pool:
        crowd = list(pool.map(new_device, range(MEMBERS)))
    alice.sync()

    key_packages = alice.claim({crowd_user.user_id: [d.device_id for d in crowd]})
    assert len(key_packages) == MEMBERS
    alice.create_group(room_id)
    added = alice.group.add_members(key_packages)
    response = alice.commit_and_apply(added)
    assert response.status == 200 and response.body == {"epoch": 1}, response

    def welcomed(device: MlsDevice) -> tuple[MlsDevice, dict]:
        body = thin_sync(device.http, device.since)
        device.since = body["next_batch"]
        return device, body

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(welcomed, crowd))
    notes = [[e["content"] for e in body.get("to_device", {}).get("events", [])
              if e["type"] == "org.vignette.mls.welcome"] for _, body in results]
    assert all(n == [{"room_id": room_id, "epoch": 0}] for n in notes)
    assert all(body["device_one_time_keys_count"].get(KP_ALGORITHM, 0) == 0 for _, body in results)
    for device, body in results[:JOINERS]:
        assert device.join_from_welcome(body) == 0
    # Every device can fetch the Welcome that names it.
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda d: d.http.get(f"{MLS_PREFIX}/rooms/{q(room_id)}/welcome/0").status,
                                 crowd[JOINERS:JOINERS + 100]))
    assert set(statuses) == {200}

    alice.send(b"to all fifteen hundred")

    def message_types(device: MlsDevice) -> list[str]:
        body = thin_sync(device.http, device.since)
        device.since = body["next_batch"]
        events = body.get("rooms", {}).get("join", {}).get(room_id, {}).get("timeline", {}).get("events", [])
        return [e["type"] for e in events]

    with ThreadPoolExecutor(8) as pool:
        seen = list(pool.map(message_types, crowd[JOINERS:]))
    assert all("org.vignette.mls.message" in types for types in seen)
    for device in crowd[:JOINERS]:
        assert device.received(device.sync()) == [b"to all fifteen hundred"]
