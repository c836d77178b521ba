"""Several users send at once; a syncing client sees every message exactly once, in order."""

from __future__ import annotations

import threading

from tests.support.client import register_user
from tests.support.server import RunningServer
from tests.support.sync import send_text, shared_room, sync, timeline_events

SENDERS = 4
MESSAGES_EACH = 250
BIG_TIMELINE = {"room": {"timeline": {"limit": 1000}}}


def test_concurrent_senders_nothing_missed_or_duplicated(server: RunningServer) -> None:
    reader = register_user(server.base_url)
    senders = [register_user(server.base_url) for _ in range(SENDERS)]
    room_id = shared_room(reader, *senders)
    since = sync(reader, sync_filter=BIG_TIMELINE)["next_batch"]
    sent: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def send_all(index: int) -> None:
        try:
            sent[str(index)] = [send_text(senders[index], room_id, f"{index}-{n}")
                                for n in range(MESSAGES_EACH)]
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=send_all, args=(i,)) for i in range(SENDERS)]
    for thread in threads:
        thread.start()
    seen: list[str] = []
    expected = SENDERS * MESSAGES_EACH
    rounds = 0
    while len(seen) < expected and rounds < 2000:
        rounds += 1
        body = sync(reader, since, timeout=5000, sync_filter=BIG_TIMELINE)
        since = body["next_batch"]
        room = body.get("rooms", {}).get("join", {}).get(room_id)
        if room is not None:
            assert room["timeline"]["limited"] is False
        seen.extend(e["event_id"] for e in timeline_events(body, room_id)
                    if e["type"] == "m.room.message")
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert len(seen) == len(set(seen)), "an event was delivered twice"
    all_sent = {event_id for ids in sent.values() for event_id in ids}
    assert set(seen) == all_sent
    position = {event_id: i for i, event_id in enumerate(seen)}
    for ids in sent.values():  # each sender's own messages arrive in the order sent
        assert [position[e] for e in ids] == sorted(position[e] for e in ids)
