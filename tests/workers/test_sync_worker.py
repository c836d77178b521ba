"""A sync worker beside the main process: real processes on PostgreSQL and Redis.

Messages are sent on the main process (the one writer of the events stream) and read on the
worker's /sync and WebSocket, which learn new positions over the Redis channel and read the
events from the shared database; nothing is lost across a worker restart or a kill -9.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.client import Client, register_user
from tests.support.rooms import leave
from tests.support.sync import (
    StreamClient,
    ephemeral_of,
    send_text,
    shared_room,
    sync,
    sync_until,
    timeline_events,
)
from tests.support.workers import (
    ProcessSet,
    drop_redis_connections,
    on,
    serve,
    start_process_set,
    wait_for_redis_connections,
)

pytestmark = pytest.mark.postgres

BIG_TIMELINE = {"room": {"timeline": {"limit": 1000}}}


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessSet]:
    directory = tmp_path_factory.mktemp("workers")
    yield from serve(start_process_set(directory, ["reader1"]))



def bodies(events: list[dict]) -> list[str]:
    return [e["content"]["body"] for e in events if e["type"] == "m.room.message"]


def sync_collect(client: Client, since: str, room_id: str, count: int) -> tuple[list[str], str]:
    """Long-poll until ``count`` messages arrived; every message once, in order."""
    seen: list[str] = []
    for _ in range(50):
        body = sync(client, since, timeout=10_000, sync_filter=BIG_TIMELINE)
        since = body["next_batch"]
        seen.extend(bodies(timeline_events(body, room_id)))
        if len(seen) >= count:
            return seen, since
    raise AssertionError(f"only {len(seen)} of {count} messages arrived: {seen}")


def stream_collect(stream: StreamClient, room_id: str, count: int) -> list[str]:
    seen: list[str] = []
    while len(seen) < count:
        seen.extend(bodies(timeline_events(stream.next_frame(), room_id)))
    return seen


def test_messages_sent_on_main_reach_sync_and_websocket_on_the_worker(
    processes: ProcessSet,
) -> None:
    main, worker = processes.main, processes.workers["reader1"]
    alice = register_user(main.base_url)
    bob = register_user(main.base_url)
    room_id = shared_room(alice, bob)
    bob_w = on(bob, worker.base_url)
    since = sync(bob_w, sync_filter=BIG_TIMELINE)["next_batch"]
    stream = StreamClient.connect(bob_w, since=since, sync_filter=BIG_TIMELINE)
    try:
        sent = [f"m{i}" for i in range(20)]
        for text in sent:
            send_text(alice, room_id, text)
        seen, _ = sync_collect(bob_w, since, room_id, len(sent))
        assert seen == sent
        assert stream_collect(stream, room_id, len(sent)) == sent
    finally:
        stream.close()


def test_a_room_joined_after_the_worker_cached_the_users_rooms(processes: ProcessSet) -> None:
    """The worker answered "bob's rooms" before bob joined another room on main: the new room,
    its leave and its messages must still reach bob on the worker (its caches are off)."""
    main, worker = processes.main, processes.workers["reader1"]
    alice, bob = register_user(main.base_url), register_user(main.base_url)
    first = shared_room(alice, bob)
    bob_w = on(bob, worker.base_url)
    since = sync(bob_w, sync_filter=BIG_TIMELINE)["next_batch"]
    send_text(alice, first, "in the first room")
    assert sync_collect(bob_w, since, first, 1)[0] == ["in the first room"]
    second = shared_room(alice, bob)
    send_text(alice, second, "in the second room")
    seen, since = sync_collect(bob_w, since, second, 1)
    assert seen == ["in the second room"]
    leave(bob, second)
    body, _ = sync_until(bob_w, since, lambda b: second in b.get("rooms", {}).get("leave", {}))
    assert second in body["rooms"]["leave"]


def test_a_worker_restart_loses_nothing(processes: ProcessSet) -> None:
    main, worker = processes.main, processes.workers["reader1"]
    alice = register_user(main.base_url)
    bob = register_user(main.base_url)
    room_id = shared_room(alice, bob)
    bob_w = on(bob, worker.base_url)
    send_text(alice, room_id, "before")
    seen, since = sync_collect(
        bob_w, sync(bob_w, sync_filter=BIG_TIMELINE)["next_batch"], room_id, 0
    )
    worker.stop()
    while_down = [f"down{i}" for i in range(10)]
    for text in while_down:
        send_text(alice, room_id, text)
    worker.start()
    seen, since = sync_collect(bob_w, since, room_id, len(while_down))
    assert seen == while_down
    # The restarted worker hears new positions again: a long-poll parked on it wakes.
    after = [f"up{i}" for i in range(5)]
    for text in after:
        send_text(alice, room_id, text)
    seen, _ = sync_collect(bob_w, since, room_id, len(after))
    assert seen == after


def test_a_killed_worker_resumes_from_the_token(processes: ProcessSet) -> None:
    main, worker = processes.main, processes.workers["reader1"]
    alice = register_user(main.base_url)
    bob = register_user(main.base_url)
    room_id = shared_room(alice, bob)
    bob_w = on(bob, worker.base_url)
    since = sync(bob_w, sync_filter=BIG_TIMELINE)["next_batch"]
    stream = StreamClient.connect(bob_w, since=since, sync_filter=BIG_TIMELINE)
    first = [f"a{i}" for i in range(5)]
    for text in first:
        send_text(alice, room_id, text)
    assert stream_collect(stream, room_id, len(first)) == first
    token = stream.last_token
    worker.kill()
    stream.close()
    rest = [f"b{i}" for i in range(5)]
    for text in rest:
        send_text(alice, room_id, text)
    worker.start()
    assert token is not None
    resumed = StreamClient.connect(bob_w, since=token, sync_filter=BIG_TIMELINE)
    try:
        assert stream_collect(resumed, room_id, len(rest)) == rest
    finally:
        resumed.close()


def test_writes_sent_to_the_worker_are_forwarded_to_main(processes: ProcessSet) -> None:
    main, worker = processes.main, processes.workers["reader1"]
    # Registration, room creation and sends all go through the worker, which writes nothing.
    alice = register_user(worker.base_url)
    bob = register_user(worker.base_url)
    room_id = shared_room(alice, bob)
    since = sync(on(bob, main.base_url), sync_filter=BIG_TIMELINE)["next_batch"]
    send_text(alice, room_id, "via the worker")
    seen, _ = sync_collect(on(bob, main.base_url), since, room_id, 1)
    assert seen == ["via the worker"]
    # Errors come back as the main process gave them.
    response = alice.put(
        f"/_matrix/client/v3/rooms/!nope:{processes.server_name}/send/m.room.message/t1",
        {"msgtype": "m.text", "body": "x"},
    )
    assert response.status == 403 or response.status == 404, response
    assert response.errcode in ("M_FORBIDDEN", "M_NOT_FOUND")
    bad = Client(worker.base_url, "not-a-token").get("/_matrix/client/v3/sync")
    assert bad.status == 401 and bad.errcode == "M_UNKNOWN_TOKEN"


def test_websocket_requests_on_the_worker_are_written_by_main(processes: ProcessSet) -> None:
    main, worker = processes.main, processes.workers["reader1"]
    alice = register_user(main.base_url)
    bob = register_user(main.base_url)
    room_id = shared_room(alice, bob)
    bob_w = on(bob, worker.base_url)
    since = sync(bob_w, sync_filter=BIG_TIMELINE)["next_batch"]
    stream = StreamClient.connect(on(alice, worker.base_url))
    try:
        sent = stream.request(
            "send",
            room_id=room_id,
            event_type="m.room.message",
            txn_id="ws1",
            content={"msgtype": "m.text", "body": "over the socket"},
        )
        assert sent["type"] == "response" and sent["body"]["event_id"].startswith("$"), sent
        again = stream.request(
            "send",
            room_id=room_id,
            event_type="m.room.message",
            txn_id="ws1",
            content={"msgtype": "m.text", "body": "over the socket"},
        )
        assert again["body"]["event_id"] == sent["body"]["event_id"]  # txn-ID idempotency holds
        seen, since = sync_collect(bob_w, since, room_id, 1)
        assert seen == ["over the socket"]
        # Typing is written by main and reaches the worker's /sync with its list of users.
        assert (
            stream.request("typing", room_id=room_id, typing=True, timeout=30_000)["type"]
            == "response"
        )
        body, since = sync_until(bob_w, since, lambda b: ephemeral_of(b, room_id, "m.typing"))
        assert ephemeral_of(body, room_id, "m.typing")[0]["content"]["user_ids"] == [alice.user_id]
        receipt = stream.request(
            "receipt", room_id=room_id, receipt_type="m.read", event_id=sent["body"]["event_id"]
        )
        assert receipt["type"] == "response", receipt
        body, since = sync_until(bob_w, since, lambda b: ephemeral_of(b, room_id, "m.receipt"))
        assert sent["body"]["event_id"] in ephemeral_of(body, room_id, "m.receipt")[0]["content"]
        # Main's refusal comes back as the same error.
        refused = stream.request(
            "send",
            room_id=f"!nope:{processes.server_name}",
            event_type="m.room.message",
            txn_id="ws2",
            content={"msgtype": "m.text", "body": "x"},
        )
        assert refused["type"] == "error" and refused["errcode"] in (
            "M_FORBIDDEN",
            "M_NOT_FOUND",
        ), refused
    finally:
        stream.close()


def test_redis_connections_lost_under_load_lose_nothing(processes: ProcessSet) -> None:
    main, worker = processes.main, processes.workers["reader1"]
    alice = register_user(main.base_url)
    bob = register_user(main.base_url)
    room_id = shared_room(alice, bob)
    bob_w = on(bob, worker.base_url)
    since = sync(bob_w, sync_filter=BIG_TIMELINE)["next_batch"]
    stream = StreamClient.connect(bob_w, since=since, sync_filter=BIG_TIMELINE)
    try:
        sent = []
        for batch in range(4):
            for i in range(15):
                sent.append(f"r{batch}-{i}")
                send_text(alice, room_id, sent[-1])
            # Main's and the worker's connections all go (two each), with the recorded positions.
            wait_for_redis_connections(processes.server_name, 4)
            assert drop_redis_connections(processes.server_name) == 4
        seen, _ = sync_collect(bob_w, since, room_id, len(sent))
        assert seen == sent
        assert stream_collect(stream, room_id, len(sent)) == sent
        # And the channel is back: a message after the last cut still wakes a long-poll.
        _, since = sync_collect(bob_w, since, room_id, len(sent))
        send_text(alice, room_id, "after")
        assert sync_collect(bob_w, since, room_id, 1)[0] == ["after"]
    finally:
        stream.close()


def test_a_token_revoked_on_main_stops_working_on_the_worker(processes: ProcessSet) -> None:
    main, worker = processes.main, processes.workers["reader1"]
    alice = register_user(main.base_url)
    alice_w = on(alice, worker.base_url)
    assert (
        alice_w.get("/_matrix/client/v3/sync", params={"timeout": "0"}).status == 200
    )  # now cached there
    assert alice.post("/_matrix/client/v3/logout", {}).status == 200
    # The drop travels on the channel ahead of any later advance; a write's advance is our fence.
    other = register_user(main.base_url)
    fence_room = other.post("/_matrix/client/v3/createRoom", {}).body["room_id"]
    other_w = on(other, worker.base_url)
    since = sync(other_w)["next_batch"]
    send_text(other, fence_room, "fence")
    sync_collect(other_w, since, fence_room, 1)
    refused = alice_w.get("/_matrix/client/v3/sync", params={"timeout": "0"})
    assert refused.status == 401 and refused.errcode == "M_UNKNOWN_TOKEN", refused
