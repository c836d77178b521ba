"""Event persisters: rooms sharded by ID over two persisters, beside main and two client readers.

Real processes on PostgreSQL and Redis. Senders talk to main and to the client readers, which
hand each room's events to the room's persister; a WebSocket on one reader and a long-poll on
the other must see every message exactly once and in each room's order, through a cut of
every Redis connection under load and a ``kill -9`` of a reader.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from homeserver.replication.persisters import owner_of
from tests.support.client import Client, q, register_user
from tests.support.sync import (
    StreamClient,
    room_messages,
    send_text,
    shared_room,
    stream_messages,
    sync,
)
from tests.support.workers import (
    ProcessSet,
    drop_redis_connections,
    on,
    serve,
    start_persister_set,
    wait_for_redis_connections,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PERSISTERS = ["persister1", "persister2"]
READERS = ["reader1", "reader2"]
BIG_TIMELINE = {"room": {"timeline": {"limit": 1000}}}
SENDERS = 10
ROOMS_PER_SENDER = 2
MESSAGES_PER_SENDER = 100  # 10 senders x 100 = 1,000, over 20 rooms
#: Two Redis connections for each of main, two persisters and two readers.
CONNECTIONS = 2 * (1 + len(PERSISTERS) + len(READERS))


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessSet]:
    directory: Path = tmp_path_factory.mktemp("persisters")
    yield from serve(start_persister_set(directory, PERSISTERS, READERS))



def urls(processes: ProcessSet) -> list[str]:
    """Where clients send: main and the client readers (the persisters serve no client)."""
    return [processes.main.base_url] + [processes.workers[name].base_url for name in READERS]


def rooms_on_both(processes: ProcessSet, reader: Client, count: int) -> tuple[list[Client], list[str]]:
    """``count`` senders, each with ROOMS_PER_SENDER rooms shared with ``reader``; the rooms
    alternate between the persisters (created through main and the readers in turn; a room
    that hashes to the other persister is left aside)."""
    entry = urls(processes)
    senders, rooms = [], []
    for index in range(count):
        sender = register_user(entry[index % len(entry)])
        senders.append(sender)
        for _ in range(ROOMS_PER_SENDER):
            wanted = PERSISTERS[len(rooms) % len(PERSISTERS)]
            room_id = shared_room(sender, reader)
            while owner_of(room_id, PERSISTERS) != wanted:
                room_id = shared_room(on(sender, entry[len(rooms) % len(entry)]), reader)
            rooms.append(room_id)
    return senders, rooms


def check_once_in_order(seen: list[tuple[str, str]], rooms: list[str], per_room: int) -> None:
    assert len(seen) == len(rooms) * per_room
    assert len(set(seen)) == len(seen)  # exactly once
    for index, room_id in enumerate(rooms):
        mine = [text for room, text in seen if room == room_id]
        assert mine == [f"r{index}-{n}" for n in range(per_room)]  # in the room's order


def send_messages(processes: ProcessSet, senders: list[Client], rooms: list[str], per_sender: int,
                  halfway: threading.Event | None = None) -> None:
    """Each sender alternates over its rooms, through main and the readers in turn;
    ``halfway`` is set once half the messages are sent (the others still going)."""
    entry = urls(processes)
    per_room = per_sender // ROOMS_PER_SENDER
    sent = [0]
    lock = threading.Lock()

    def send_all(index: int) -> None:
        client = senders[index]
        for n in range(per_room):
            for k in range(ROOMS_PER_SENDER):
                room = index * ROOMS_PER_SENDER + k
                send_text(on(client, entry[(index + n) % len(entry)]), rooms[room], f"r{room}-{n}")
                with lock:
                    sent[0] += 1
                    if halfway is not None and sent[0] * 2 >= len(senders) * per_sender:
                        halfway.set()

    with ThreadPoolExecutor(len(senders)) as pool:
        list(pool.map(send_all, range(len(senders))))


def long_poll(client: Client, since: str, rooms: list[str], total: int) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    token = since
    for _ in range(500):
        if len(seen) >= total:
            break
        body = sync(client, token, timeout=20_000, sync_filter=BIG_TIMELINE)
        token = body["next_batch"]
        seen += room_messages(body, rooms)
    return seen


def test_a_thousand_messages_over_two_persisters_reach_both_readers(processes: ProcessSet) -> None:
    reader1, reader2 = (processes.workers[name].base_url for name in READERS)
    reader = register_user(processes.main.base_url)
    senders, rooms = rooms_on_both(processes, reader, SENDERS)
    since = sync(on(reader, reader2), sync_filter=BIG_TIMELINE)["next_batch"]
    stream = StreamClient.connect(on(reader, reader1), since=since, sync_filter=BIG_TIMELINE, timeout=120)
    total = SENDERS * MESSAGES_PER_SENDER
    with ThreadPoolExecutor(2) as pool:
        try:
            polled = pool.submit(long_poll, on(reader, reader2), since, rooms, total)
            streamed = pool.submit(stream_messages, stream, rooms, total)
            send_messages(processes, senders, rooms, MESSAGES_PER_SENDER)
            via_ws, via_sync = streamed.result(), polled.result()
        finally:
            stream.close()  # before the pool waits for its threads: a reader blocked on it returns
    per_room = MESSAGES_PER_SENDER // ROOMS_PER_SENDER
    check_once_in_order(via_ws, rooms, per_room)
    check_once_in_order(via_sync, rooms, per_room)
    # /messages, read on a reader, has each room's messages in the same order.
    history = on(reader, reader1).get(
        f"/_matrix/client/v3/rooms/{q(rooms[-1])}/messages", params={"dir": "f", "limit": "1000"}
    )
    texts = [e["content"]["body"] for e in history.body["chunk"] if e["type"] == "m.room.message"]
    assert texts == [f"r{len(rooms) - 1}-{n}" for n in range(per_room)]


def test_redis_connections_cut_under_load_lose_nothing(processes: ProcessSet) -> None:
    """Every process's Redis connections and the recorded positions go mid-load (what a Redis
    restart does to us); every message still arrives, once and in order."""
    reader1, reader2 = (processes.workers[name].base_url for name in READERS)
    reader = register_user(processes.main.base_url)
    senders, rooms = rooms_on_both(processes, reader, 4)
    since = sync(on(reader, reader2), sync_filter=BIG_TIMELINE)["next_batch"]
    stream = StreamClient.connect(on(reader, reader1), since=since, sync_filter=BIG_TIMELINE, timeout=120)
    halfway = threading.Event()
    per_sender = 40
    total = len(senders) * per_sender
    with ThreadPoolExecutor(3) as pool:
        try:
            wait_for_redis_connections(processes.server_name, CONNECTIONS)
            polled = pool.submit(long_poll, on(reader, reader2), since, rooms, total)
            streamed = pool.submit(stream_messages, stream, rooms, total)
            sending = pool.submit(send_messages, processes, senders, rooms, per_sender, halfway)
            assert halfway.wait(120)
            assert drop_redis_connections(processes.server_name) == CONNECTIONS
            sending.result()
            via_ws, via_sync = streamed.result(), polled.result()
        finally:
            stream.close()  # before the pool waits for its threads: a reader blocked on it returns
    check_once_in_order(via_ws, rooms, per_sender // ROOMS_PER_SENDER)
    check_once_in_order(via_sync, rooms, per_sender // ROOMS_PER_SENDER)


def test_a_killed_reader_resumes_on_the_other_reader(processes: ProcessSet) -> None:
    """``kill -9`` of the reader holding the WebSocket: the client reconnects to the other
    reader with its last token and misses nothing."""
    victim, survivor = (processes.workers[name] for name in READERS)
    reader = register_user(processes.main.base_url)
    senders, rooms = rooms_on_both(processes, reader, 2)
    since = sync(on(reader, victim.base_url), sync_filter=BIG_TIMELINE)["next_batch"]
    stream = StreamClient.connect(on(reader, victim.base_url), since=since, sync_filter=BIG_TIMELINE)
    first = [(room_id, f"before-{i}") for i, room_id in enumerate(rooms)]
    for (room_id, text), sender in zip(first, [s for s in senders for _ in range(ROOMS_PER_SENDER)], strict=True):
        send_text(on(sender, processes.main.base_url), room_id, text)
    assert sorted(stream_messages(stream, rooms, len(first))) == sorted(first)
    token = stream.last_token
    assert token is not None
    victim.kill()
    stream.close()
    try:
        rest = [(room_id, f"after-{i}") for i, room_id in enumerate(rooms)]
        for (room_id, text), sender in zip(rest, [s for s in senders for _ in range(ROOMS_PER_SENDER)], strict=True):
            send_text(on(sender, processes.main.base_url), room_id, text)
        resumed = StreamClient.connect(on(reader, survivor.base_url), since=token, sync_filter=BIG_TIMELINE)
        try:
            after = stream_messages(resumed, rooms, len(rest))
        finally:
            resumed.close()
        assert sorted(after) == sorted(rest)
    finally:
        victim.start()


def test_push_rules_run_for_rooms_on_persisters(processes: ProcessSet) -> None:
    """Main evaluates push rules for the events persisters write (it follows the events
    stream): the unread counts of a room on each persister move."""
    reader = register_user(processes.main.base_url)
    senders, rooms = rooms_on_both(processes, reader, 2)
    for index, room_id in enumerate(rooms):
        send_text(on(senders[index // ROOMS_PER_SENDER], processes.main.base_url), room_id, f"ping {index}")
    reader_w = on(reader, processes.workers[READERS[0]].base_url)
    counts: dict[str, int] = {}
    token = None
    for _ in range(60):
        body = sync(reader_w, token, timeout=2_000)
        token = body["next_batch"]
        for room_id, room in body.get("rooms", {}).get("join", {}).items():
            counts[room_id] = room.get("unread_notifications", {}).get("notification_count", 0)
        if all(counts.get(room_id, 0) >= 1 for room_id in rooms):
            break
    assert {room_id: counts.get(room_id, 0) >= 1 for room_id in rooms} == dict.fromkeys(rooms, True)


def test_the_persister_endpoint_takes_only_its_instances(processes: ProcessSet) -> None:
    """What the other instances call on a persister refuses anyone without the shared
    secret, and answers bad submissions with a Matrix error, never a 500."""
    secret = yaml.safe_load(processes.main.config_path.read_text())["worker_replication_secret"]
    persister = processes.workers[PERSISTERS[0]].base_url
    path = "/_vignette/replication/v1/pipeline/submit_local"
    body = {"room_id": "!r:x", "specs": [], "new_room": None}
    assert Client(persister).post(path, body).status == 403
    assert Client(persister, "not-the-secret").post(path, body).errcode == "M_FORBIDDEN"
    instance = Client(persister, secret)
    assert instance.post("/_vignette/replication/v1/pipeline/nope", body).status == 404
    for bad in ({}, {"room_id": "!r:x", "specs": [{"sender": 1}]}, {"room_id": "!r:x", "specs": "x"}):
        answer = instance.post(path, bad)
        assert answer.status == 400 and answer.errcode == "M_BAD_JSON", answer
    # A user's access token is not an instance's secret either.
    user = register_user(processes.main.base_url)
    assert Client(persister, user.access_token).post(path, body).status == 403
