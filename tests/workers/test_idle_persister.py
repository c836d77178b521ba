"""A persister that no room has reached yet must not hold the events stream back.

The stream's token is the minimum over every persister's position, so an idle persister
answers the others' advances with its own. Before it opened its writer at start-up, a
persister whose rooms had seen no request published nothing, and every process's token
stayed where that persister started: a fresh set delivered nothing to readers (what the
fan-out bench saw). Here, on a fresh set, only rooms of one persister are used.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.client import Client, register_user
from tests.support.sync import StreamClient, send_text, shared_room, sync, timeline_events
from tests.support.workers import ProcessSet, serve, start_persister_set

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PERSISTERS = ["persister1", "persister2"]


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessSet]:
    directory: Path = tmp_path_factory.mktemp("idle_persister")
    yield from serve(start_persister_set(directory, PERSISTERS, ["reader1"]))


def test_rooms_on_one_persister_reach_readers_while_the_other_is_idle(processes: ProcessSet) -> None:
    main, reader_url = processes.main.base_url, processes.workers["reader1"].base_url
    alice, bob = register_user(main), register_user(main)
    room_id = shared_room(alice, bob)  # whichever persister owns it, the other stays idle
    on_reader = Client(reader_url, bob.access_token, bob.user_id, bob.device_id)
    since = sync(on_reader)["next_batch"]
    stream = StreamClient.connect(on_reader, since=since, timeout=60)
    try:
        send_text(alice, room_id, "through one persister")
        frame = stream.next_frame()
        while not timeline_events(frame, room_id):
            frame = stream.next_frame()
        assert [e["content"].get("body") for e in timeline_events(frame, room_id)] == ["through one persister"]
    finally:
        stream.close()
    # A long-poll on main (which writes no events) sees it too.
    body = sync(Client(main, bob.access_token, bob.user_id, bob.device_id), since, timeout=30_000)
    assert "through one persister" in [e["content"].get("body") for e in timeline_events(body, room_id)]
