"""mls_commit_retention: old commits leave the log; the group's epoch and later commits carry on."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support.client import q, register_user
from tests.support.databases import drop_database
from tests.support.mls import MLS_PREFIX, MlsDevice, mls_room_with
from tests.support.server import RunningServer, start_test_server


@pytest.fixture(scope="module", params=["sqlite3", pytest.param("psycopg2", marks=pytest.mark.postgres)])
def short_retention_server(request, tmp_path_factory) -> Iterator[RunningServer]:
    running, database = start_test_server(tmp_path_factory.mktemp("mls-retention"), request.param,
                                          mls_commit_retention="1ms")
    try:
        yield running
    finally:
        running.stop()
        drop_database(database)


def test_commits_past_retention_are_purged(short_retention_server: RunningServer) -> None:
    server = short_retention_server
    alice, bob = MlsDevice(register_user(server.base_url)), MlsDevice(register_user(server.base_url))
    room_id = mls_room_with(alice, bob)
    log = f"{MLS_PREFIX}/rooms/{q(room_id)}/commits"
    assert [c["epoch"] for c in alice.http.get(log).body["commits"]] == [0]
    server.restart()  # the purge runs at start-up (and hourly), in the background: wait for it
    for _ in range(100):
        after = alice.http.get(log)
        if after.status == 200 and not after.body["commits"]:
            break
        time.sleep(0.1)
    assert after.status == 200 and after.body == {"epoch": 1, "commits": []}
    assert bob.http.get(f"{MLS_PREFIX}/rooms/{q(room_id)}/welcome/0").status == 404
    assert alice.commit_and_apply(alice.group.commit()).status == 200
    assert bob.apply_commits(bob.sync()) == [1]
