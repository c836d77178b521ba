"""Delayed events survive the server: a timer that fell due while it was down (killed with
SIGKILL) fires at start-up, one not yet due fires later, and a cancel is remembered."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support.calls import (
    delay_id_of,
    delayed_send,
    delayed_state,
    manage,
    room_event_of,
    scheduled,
    wait_for,
)
from tests.support.databases import ENGINES
from tests.support.rooms import create_room, get_state, invite, join, new_user
from tests.support.server import RunningServer, custom_server


@pytest.fixture(scope="module", params=ENGINES)
def restart_server(request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with custom_server(tmp_path_factory.mktemp(f"delay-restart-{request.param}"),
                       request.param, max_event_delay_duration="1h") as running:
        yield running


def kill(server: RunningServer) -> None:
    assert server.process is not None
    server.process.kill()
    server.process.wait()
    server.process = None


def test_timers_fire_after_a_crash(restart_server: RunningServer) -> None:
    alice, bob = new_user(restart_server.base_url), new_user(restart_server.base_url)
    room_id = create_room(alice)
    invite(alice, room_id, str(bob.user_id))
    join(bob, room_id)
    overdue = delay_id_of(delayed_send(alice, room_id, {"msgtype": "m.text", "body": "overdue"}, 1000))
    state = delay_id_of(delayed_state(alice, room_id, "m.room.topic", "", {"topic": "overdue too"}, 1000))
    # "later" must outlast the crash and restart, "cancelled" the request that cancels it, on a loaded machine.
    later = delay_id_of(delayed_send(alice, room_id, {"msgtype": "m.text", "body": "later"}, 20000))
    cancelled = delay_id_of(delayed_send(alice, room_id, {"msgtype": "m.text", "body": "cancelled"}, 15000))
    assert manage(alice, cancelled, "cancel").status == 200
    due = scheduled(alice)
    kill(restart_server)
    time.sleep(max(0.0, (due[overdue]["running_since"] + 2000) / 1000 - time.time()))
    restart_server.start()

    event = wait_for(lambda: room_event_of(bob, room_id, lambda e: e["content"].get("body") == "overdue"),
                     "the overdue delayed message")
    assert event["origin_server_ts"] >= due[overdue]["running_since"] + 1000
    wait_for(lambda: get_state(bob, room_id, "m.room.topic").body.get("topic") == "overdue too",
             "the overdue delayed state")
    assert set(scheduled(alice)) == {later}
    wait_for(lambda: room_event_of(bob, room_id, lambda e: e["content"].get("body") == "later"),
             "the delayed message due after the restart")
    assert room_event_of(bob, room_id, lambda e: e["content"].get("body") == "cancelled") is None
    assert scheduled(alice) == {}
    # Each was sent exactly once.
    bodies = [e["content"].get("body") for e in
              bob.get(f"/_matrix/client/v3/rooms/{room_id}/messages", params={"dir": "b", "limit": "50"}).body["chunk"]]
    assert bodies.count("overdue") == 1 and bodies.count("later") == 1
    assert state not in scheduled(alice)


def test_restart_and_cancel_work_on_timers_from_before_the_restart(restart_server: RunningServer) -> None:
    alice = new_user(restart_server.base_url)
    room_id = create_room(alice)
    keep = delay_id_of(delayed_send(alice, room_id, {"body": "keep"}, 3_000_000))
    drop = delay_id_of(delayed_send(alice, room_id, {"body": "drop"}, 3_000_000))
    restart_server.restart()
    assert manage(alice, keep, "restart", token=False).status == 200
    assert manage(alice, drop, "cancel", in_body=True).status == 200
    assert set(scheduled(alice)) == {keep}
    restart_server.restart()
    assert set(scheduled(alice)) == {keep}
