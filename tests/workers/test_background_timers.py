"""Timers in a set of processes (docs/workers.md): delayed events (MSC4140) and
self-destructing messages fire on the background-jobs worker only, once, never on main, a
client reader or a persister; with the events written by main, and by two persisters.

Clients talk to a client reader (writes are forwarded to main, which writes the timer rows
and hands them to the background worker over Redis).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.calls import delay_id_of, delayed_send, scheduled, wait_for
from tests.support.client import Client
from tests.support.databases import drop_database
from tests.support.rooms import V3, create_room, new_user, send_message
from tests.support.workers import ProcessSet, started, write_process_set

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

READER, BACKGROUND = "reader1", "background1"
PERSISTERS = ["persister1", "persister2"]


@pytest.fixture(scope="module", params=["main writes events", "two persisters"])
def processes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessSet]:
    directory: Path = tmp_path_factory.mktemp("timers")
    extra = {}
    if request.param == "two persisters":
        from tests.support.server import free_port

        extra = {"persister_ports": {name: free_port() for name in PERSISTERS},
                 "stream_writers": {"events": PERSISTERS}}
    running = started(write_process_set(
        directory, [READER, BACKGROUND], run_background_tasks_on=BACKGROUND,
        worker_replication_secret=secrets.token_hex(16), max_event_delay_duration="1h", **extra))
    try:
        yield running
    finally:
        running.stop()
        drop_database(running.database)


def logs(processes: ProcessSet) -> dict[str, str]:
    """Each process's log, by instance name."""
    found = {"main": (processes.main.directory / "homeserver.log").read_text()}
    for name, worker in processes.workers.items():
        found[name] = (worker.directory / "homeserver.log").read_text()
    return found


def bodies(client: Client, room_id: str) -> list[str]:
    response = client.get(f"{V3}/rooms/{room_id}/messages", params={"dir": "b", "limit": 100})
    assert response.status == 200, response
    return [e["content"].get("body") for e in response.body["chunk"] if e["type"] == "m.room.message"]


def on_reader(processes: ProcessSet, client: Client) -> Client:
    return Client(processes.workers[READER].base_url, client.access_token, client.user_id, client.device_id)


def test_a_delayed_event_is_sent_once_by_the_background_worker(processes: ProcessSet) -> None:
    alice = on_reader(processes, new_user(processes.main.base_url))
    room_id = create_room(alice)
    text = f"delayed {time.monotonic_ns()}"
    delay_id = delay_id_of(delayed_send(alice, room_id, {"msgtype": "m.text", "body": text}, 1500))
    wait_for(lambda: text in bodies(alice, room_id), "the delayed event to be sent")
    wait_for(lambda: delay_id not in scheduled(alice), "the delayed event to be done")
    assert bodies(alice, room_id).count(text) == 1
    fired = {name for name, log in logs(processes).items() if f"delayed event {delay_id}" in log}
    assert fired == {BACKGROUND}


def test_a_self_destructing_message_is_expunged_by_the_background_worker(processes: ProcessSet) -> None:
    alice = on_reader(processes, new_user(processes.main.base_url))
    room_id = create_room(alice)
    text = f"burn {time.monotonic_ns()}"
    event_id = send_message(alice, room_id, text,
                            **{"org.matrix.self_destruct_after": int(time.time() * 1000) + 1500})
    wait_for(lambda: text not in bodies(alice, room_id), "the message to be expunged")
    expunged = {name for name, log in logs(processes).items() if f"self-destruct: expunged {event_id}" in log}
    assert expunged == {BACKGROUND}
