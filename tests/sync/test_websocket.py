"""The WebSocket stream: same events as /sync, in the same order; requests; resume; replace."""

from __future__ import annotations

import pytest
import websocket

from tests.support.client import register_user
from tests.support.server import RunningServer
from tests.support.sync import (
    WS_PATH,
    StreamClient,
    create_room,
    ephemeral_of,
    joined_room,
    send_text,
    shared_room,
    sync,
    timeline_events,
)

BIG_TIMELINE = {"room": {"timeline": {"limit": 1000}}}


def frame_events(frame: dict, room_id: str) -> list[str]:
    return [e["event_id"] for e in timeline_events(frame, room_id) if e["type"] == "m.room.message"]


def collect(stream: StreamClient, room_id: str, count: int) -> list[str]:
    seen: list[str] = []
    while len(seen) < count:
        seen.extend(frame_events(stream.next_frame(), room_id))
    return seen


def test_stream_sees_what_sync_sees_in_the_same_order(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    room_id = shared_room(alice, bob)
    since = sync(bob, sync_filter=BIG_TIMELINE)["next_batch"]
    stream = StreamClient.connect(bob, since=since, sync_filter=BIG_TIMELINE)
    sent = [send_text(alice, room_id, f"m{n}") for n in range(30)]
    via_stream = collect(stream, room_id, len(sent))
    via_sync = frame_events(sync(bob, since, sync_filter=BIG_TIMELINE), room_id)
    assert via_stream == via_sync == sent
    stream.close()


def test_initial_frame_without_since_is_an_initial_sync(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    room_id = create_room(alice, name="Den")
    stream = StreamClient.connect(alice)
    frame = stream.next_frame()
    room = joined_room(frame, room_id)
    assert room is not None
    assert "m.room.name" in {e["type"] for e in room["state"]["events"] + room["timeline"]["events"]}
    stream.close()


def test_resume_after_a_dropped_connection_loses_and_repeats_nothing(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    room_id = shared_room(alice, bob)
    stream = StreamClient.connect(bob, sync_filter=BIG_TIMELINE)
    stream.next_frame()
    first = [send_text(alice, room_id, f"a{n}") for n in range(5)]
    got = collect(stream, room_id, 5)
    token = stream.last_token
    stream.ws.sock.close()  # drop without a close handshake
    missed = [send_text(alice, room_id, f"b{n}") for n in range(5)]
    resumed = StreamClient.connect(bob, since=token, sync_filter=BIG_TIMELINE)
    after = [send_text(alice, room_id, f"c{n}") for n in range(3)]
    got += collect(resumed, room_id, 8)
    assert got == first + missed + after
    resumed.close()


def test_unacknowledged_frames_are_coalesced(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    room_id = shared_room(alice, bob)
    stream = StreamClient.connect(bob, sync_filter=BIG_TIMELINE)
    stream.next_frame()
    first = send_text(alice, room_id, "first")
    frame = stream.next_frame(ack=False)
    assert frame_events(frame, room_id) == [first]
    rest = [send_text(alice, room_id, f"r{n}") for n in range(10)]
    stream.ack(frame["next_batch"])
    assert collect(stream, room_id, 10) == rest
    stream.close()


def test_requests_over_the_socket(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    room_id = shared_room(alice, bob)
    stream = StreamClient.connect(alice, sync_filter=BIG_TIMELINE)
    stream.next_frame()
    reply = stream.request("send", room_id=room_id, event_type="m.room.message", txn_id="t1",
                           content={"msgtype": "m.text", "body": "over the socket"})
    assert reply["type"] == "response", reply
    event_id = reply["body"]["event_id"]
    again = stream.request("send", room_id=room_id, event_type="m.room.message", txn_id="t1",
                           content={"msgtype": "m.text", "body": "over the socket"})
    assert again["body"]["event_id"] == event_id
    assert stream.request("typing", room_id=room_id, typing=True, timeout=20000)["type"] == "response"
    assert stream.request("receipt", room_id=room_id, receipt_type="m.read",
                          event_id=event_id)["type"] == "response"
    body = sync(bob)
    assert event_id in [e["event_id"] for e in timeline_events(body, room_id)]
    assert ephemeral_of(body, room_id, "m.typing")[0]["content"]["user_ids"] == [alice.user_id]
    error = stream.request("receipt", room_id=room_id, receipt_type="m.nope", event_id=event_id)
    assert error["type"] == "error" and error["errcode"] == "M_INVALID_PARAM"
    assert stream.request("dance")["errcode"] == "M_UNRECOGNIZED"
    assert stream.request("send", room_id=room_id)["errcode"] == "M_MISSING_PARAM"
    stream.ws.send("not json")
    assert stream.next_reply()["errcode"] == "M_NOT_JSON"
    stream.close()


def test_second_connection_for_the_device_replaces_the_first(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    room_id = create_room(alice)
    first = StreamClient.connect(alice)
    first.next_frame()
    second = StreamClient.connect(alice)
    second.next_frame()
    assert first.close_code() == 4000
    event_id = send_text(alice, room_id, "to the new socket")
    assert event_id in frame_events(second.next_frame(), room_id)
    second.close()


def test_upgrade_needs_a_valid_token_and_params(server: RunningServer) -> None:
    url = server.base_url.replace("http://", "ws://") + WS_PATH
    with pytest.raises(websocket.WebSocketBadStatusException) as missing:
        websocket.create_connection(url, timeout=10)
    assert missing.value.status_code == 401
    alice = register_user(server.base_url)
    with pytest.raises(websocket.WebSocketBadStatusException) as bad_since:
        websocket.create_connection(f"{url}?access_token={alice.access_token}&since=%21", timeout=10)
    assert bad_since.value.status_code == 400
    plain = alice.get(WS_PATH)
    assert plain.status == 400 and plain.errcode == "M_UNRECOGNIZED"


def test_a_stream_closed_at_once_leaves_no_error_behind(server: RunningServer) -> None:
    """Closing before the first frame is built must not trip the frame's room bookkeeping."""
    alice = register_user(server.base_url)
    create_room(alice)
    for _ in range(5):
        StreamClient.connect(alice).ws.close()
    stream = StreamClient.connect(alice)
    try:
        assert "next_batch" in stream.next_frame()
    finally:
        stream.ws.close()
    assert "AttributeError" not in server.output()
