"""To-device messages: delivery in order through /sync, acknowledgement, restart, idempotence."""

from __future__ import annotations

import threading
from typing import Any

from tests.support.client import Client, register_user
from tests.support.server import RunningServer
from tests.support.sync import StreamClient, sync

SEND = "/_matrix/client/v3/sendToDevice"


def send(sender: Client, txn_id: str, messages: dict[str, Any], event_type: str = "m.test") -> None:
    response = sender.put(f"{SEND}/{event_type}/{txn_id}", {"messages": messages})
    assert response.status == 200, response


def to_device_events(body: dict[str, Any]) -> list[dict[str, Any]]:
    return body.get("to_device", {}).get("events", [])


def test_messages_arrive_in_order_and_are_deleted_only_after_acknowledgement(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    first = sync(bob)
    for index in range(5):
        send(alice, f"t{index}", {bob.user_id: {bob.device_id: {"n": index}}})
    delivered = sync(bob, since=first["next_batch"])
    events = to_device_events(delivered)
    assert [e["content"]["n"] for e in events] == [0, 1, 2, 3, 4]
    assert all(e["sender"] == alice.user_id and e["type"] == "m.test" for e in events)
    # The client "lost" that response: syncing again from the same token redelivers.
    again = sync(bob, since=first["next_batch"])
    assert [e["content"]["n"] for e in to_device_events(again)] == [0, 1, 2, 3, 4]
    # Syncing with the newer token acknowledges them; they are gone afterwards.
    after_ack = sync(bob, since=again["next_batch"])
    assert to_device_events(after_ack) == []
    assert to_device_events(sync(bob, since=first["next_batch"])) == []


def test_message_survives_restart_until_acknowledged(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    token = sync(bob)["next_batch"]
    send(alice, "restart", {bob.user_id: {bob.device_id: {"kept": True}}})
    server.restart()
    body = sync(bob, since=token)
    assert [e["content"] for e in to_device_events(body)] == [{"kept": True}]
    server.restart()
    # Not acknowledged yet (the client never used the new token): still there.
    assert [e["content"] for e in to_device_events(sync(bob, since=token))] == [{"kept": True}]
    acknowledged = sync(bob, since=body["next_batch"])
    assert to_device_events(acknowledged) == []
    server.restart()
    # After a restart the stream does not go backwards past the client's token.
    send(alice, "after-restart", {bob.user_id: {bob.device_id: {"n": 2}}})
    later = sync(bob, since=acknowledged["next_batch"])
    assert [e["content"] for e in to_device_events(later)] == [{"n": 2}]


def test_retried_transaction_delivers_once_and_star_reaches_every_device(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    bob_phone = Client(server.base_url)
    login = bob_phone.post("/_matrix/client/v3/login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": bob.user_id},
        "password": "correct horse battery"})
    assert login.status == 200, login
    bob_phone.access_token, bob_phone.user_id = login.body["access_token"], login.body["user_id"]
    bob_phone.device_id = login.body["device_id"]
    tokens = {client.device_id: sync(client)["next_batch"] for client in (bob, bob_phone)}
    send(alice, "same", {bob.user_id: {"*": {"hello": 1}}})
    send(alice, "same", {bob.user_id: {"*": {"hello": 1}}})
    send(alice, "other", {bob.user_id: {"NOSUCHDEVICE": {"lost": 1}}})
    for client in (bob, bob_phone):
        events = to_device_events(sync(client, since=tokens[client.device_id]))
        assert [e["content"] for e in events] == [{"hello": 1}]


def test_long_poll_wakes_for_a_to_device_message(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    token = sync(bob)["next_batch"]
    timer = threading.Timer(0.5, send, args=(alice, "wake", {bob.user_id: {bob.device_id: {"w": 1}}}))
    timer.start()
    try:
        body = sync(bob, since=token, timeout=30_000)
    finally:
        timer.join()
    assert [e["content"] for e in to_device_events(body)] == [{"w": 1}]


def test_bad_to_device_requests(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    cases = [
        ({}, "M_BAD_JSON"),
        ({"messages": []}, "M_BAD_JSON"),
        ({"messages": {"not-a-user": {}}}, "M_INVALID_PARAM"),
        ({"messages": {alice.user_id: []}}, "M_BAD_JSON"),
        ({"messages": {alice.user_id: {alice.device_id: "text"}}}, "M_BAD_JSON"),
    ]
    for body, errcode in cases:
        response = alice.put(f"{SEND}/m.test/bad{errcode}{len(str(body))}", body)
        assert (response.status, response.errcode) == (400, errcode), (body, response)
    assert alice.put(f"{SEND}/m.test/raw", raw=b"[1, 2").errcode == "M_NOT_JSON"
    assert alice.put(f"{SEND}/m.test/anon", {"messages": {}}, token=False).errcode == "M_MISSING_TOKEN"
    remote = alice.put(f"{SEND}/m.test/remote", {"messages": {"@x:remote.example": {"D": {}}}})
    assert remote.status == 200


def test_websocket_stream_delivers_to_device_and_keeps_unacknowledged_ones(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    stream = StreamClient.connect(bob)
    stream.next_frame()
    send(alice, "ws1", {bob.user_id: {bob.device_id: {"n": 1}}})
    frame = stream.next_frame(ack=False)
    assert [e["content"] for e in to_device_events(frame)] == [{"n": 1}]
    unacknowledged = stream.last_token
    stream.ws.sock.close()  # the frame was never acknowledged
    # Not acknowledged, so not deleted: an initial sync still sees it.
    assert [e["content"] for e in to_device_events(sync(bob))] == [{"n": 1}]
    # Resuming with that frame's token acknowledges it; only newer messages follow.
    resumed = StreamClient.connect(bob, since=unacknowledged)
    send(alice, "ws2", {bob.user_id: {bob.device_id: {"n": 2}}})
    assert [e["content"] for e in to_device_events(resumed.next_frame())] == [{"n": 2}]
    resumed.close()
