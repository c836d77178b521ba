"""Three workers: sends through A (forwarded to main), a WebSocket on B and a long-poll on C.

1,000 messages from concurrent senders over several rooms; each reader sees every message
exactly once, and in each room in the order the room's sender sent them.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.client import register_user
from tests.support.sync import (
    StreamClient,
    room_messages,
    send_text,
    shared_room,
    stream_messages,
    sync,
)
from tests.support.workers import ProcessSet, on, serve, start_process_set

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

BIG_TIMELINE = {"room": {"timeline": {"limit": 1000}}}
ROOMS = 4
SENDERS_PER_ROOM = 2
MESSAGES_PER_SENDER = 125  # 4 rooms x 2 senders x 125 = 1,000


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessSet]:
    directory: Path = tmp_path_factory.mktemp("fanout")
    yield from serve(start_process_set(directory, ["reader_a", "reader_b", "reader_c"]))


def test_every_reader_sees_every_message_once_in_room_order(processes: ProcessSet) -> None:
    a, b, c = (processes.workers[name].base_url for name in ("reader_a", "reader_b", "reader_c"))
    reader = register_user(a)
    rooms, senders = [], []
    for _ in range(ROOMS):
        members = [register_user(a) for _ in range(SENDERS_PER_ROOM)]
        room_id = shared_room(members[0], *members[1:], reader)
        rooms.append(room_id)
        senders += [(room_id, on(member, a)) for member in members]
    since = sync(on(reader, c), sync_filter=BIG_TIMELINE)["next_batch"]
    stream = StreamClient.connect(on(reader, b), since=since, sync_filter=BIG_TIMELINE, timeout=120)

    def send_all(index: int) -> None:
        room_id, client = senders[index]
        for n in range(MESSAGES_PER_SENDER):
            send_text(client, room_id, f"s{index}-{n}")

    total = len(senders) * MESSAGES_PER_SENDER
    try:
        # The stream is read while the messages go out: a socket left unread for the whole
        # send (minutes on a loaded machine) is dropped when it stops answering pings.
        with ThreadPoolExecutor(1) as reading:
            streamed = reading.submit(stream_messages, stream, rooms, total)
            with ThreadPoolExecutor(len(senders)) as pool:
                list(pool.map(send_all, range(len(senders))))
            via_ws = streamed.result()
        via_sync: list[tuple[str, str]] = []
        token = since
        while len(via_sync) < total:
            body = sync(on(reader, c), token, timeout=30_000, sync_filter=BIG_TIMELINE)
            token = body["next_batch"]
            via_sync += room_messages(body, rooms)
    finally:
        stream.close()
    for seen in (via_ws, via_sync):
        assert len(seen) == total and len(set(seen)) == total  # every message, exactly once
        for index, (room_id, _) in enumerate(senders):
            mine = [
                text for room, text in seen if room == room_id and text.startswith(f"s{index}-")
            ]
            assert mine == [f"s{index}-{n}" for n in range(MESSAGES_PER_SENDER)]  # in order
