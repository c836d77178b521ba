"""Receipts reach other members; private ones reach only their owner; read markers."""

from __future__ import annotations

import pytest

from tests.support.client import register_user
from tests.support.server import RunningServer
from tests.support.sync import (
    create_room,
    ephemeral_of,
    joined_room,
    send_text,
    shared_room,
    sync,
    sync_until,
)


def receipt_path(room_id: str, receipt_type: str, event_id: str) -> str:
    return f"/_matrix/client/v3/rooms/{room_id}/receipt/{receipt_type}/{event_id}"


def receipts_for(body: dict, room_id: str, event_id: str, receipt_type: str) -> dict:
    found: dict = {}
    for event in ephemeral_of(body, room_id, "m.receipt"):
        found.update(event["content"].get(event_id, {}).get(receipt_type, {}))
    return found


def test_public_receipt_reaches_other_members(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    room_id = shared_room(alice, bob)
    event_id = send_text(alice, room_id, "read me")
    since = sync(alice)["next_batch"]
    assert bob.post(receipt_path(room_id, "m.read", event_id), {}).status == 200
    body, _ = sync_until(alice, since, lambda b: bob.user_id in receipts_for(b, room_id, event_id, "m.read"))
    assert isinstance(receipts_for(body, room_id, event_id, "m.read")[bob.user_id]["ts"], int)


def test_private_receipt_reaches_only_its_owner(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    room_id = shared_room(alice, bob)
    event_id = send_text(alice, room_id, "secretly read")
    alice_since = sync(alice)["next_batch"]
    bob_since = sync(bob)["next_batch"]
    assert bob.post(receipt_path(room_id, "m.read.private", event_id), {}).status == 200
    sync_until(bob, bob_since,
               lambda b: bob.user_id in receipts_for(b, room_id, event_id, "m.read.private"))
    # Alice sees neither the incremental change nor it in a fresh initial sync.
    later = send_text(bob, room_id, "a later message so alice's sync returns")
    body, _ = sync_until(alice, alice_since, lambda b: any(
        e["event_id"] == later for e in (joined_room(b, room_id) or {"timeline": {"events": []}})["timeline"]["events"]))
    assert receipts_for(body, room_id, event_id, "m.read.private") == {}
    assert receipts_for(sync(alice), room_id, event_id, "m.read.private") == {}


def test_threaded_receipt_carries_its_thread(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    room_id = create_room(alice)
    event_id = send_text(alice, room_id, "root")
    assert alice.post(receipt_path(room_id, "m.read", event_id), {"thread_id": "main"}).status == 200
    got = receipts_for(sync(alice), room_id, event_id, "m.read")
    assert got[alice.user_id]["thread_id"] == "main"


def test_read_markers_set_fully_read_and_the_receipt(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    room_id = create_room(alice)
    event_id = send_text(alice, room_id, "marker")
    response = alice.post(f"/_matrix/client/v3/rooms/{room_id}/read_markers",
                          {"m.fully_read": event_id, "m.read": event_id})
    assert response.status == 200, response
    body = sync(alice)
    room = joined_room(body, room_id)
    fully_read = [e for e in room["account_data"]["events"] if e["type"] == "m.fully_read"]
    assert fully_read and fully_read[0]["content"]["event_id"] == event_id
    assert alice.user_id in receipts_for(body, room_id, event_id, "m.read")


@pytest.mark.parametrize(("receipt_type", "body", "status"), [
    ("m.unknown", {}, 400),
    ("m.read", {"thread_id": 5}, 400),
    ("m.read", {"thread_id": "not-an-event"}, 400),
    ("m.fully_read", {"thread_id": "main"}, 400),
])
def test_bad_receipts(server: RunningServer, receipt_type: str, body: dict, status: int) -> None:
    alice = register_user(server.base_url)
    room_id = create_room(alice)
    event_id = send_text(alice, room_id, "x")
    response = alice.post(receipt_path(room_id, receipt_type, event_id), body)
    assert response.status == status, response


def test_receipt_for_unknown_event_or_foreign_room(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    room_id = create_room(alice)
    event_id = send_text(alice, room_id, "x")
    assert alice.post(receipt_path(room_id, "m.read", "$nope"), {}).status == 404
    assert bob.post(receipt_path(room_id, "m.read", event_id), {}).status == 403
    response = alice.post(f"/_matrix/client/v3/rooms/{room_id}/read_markers", {"m.read": 7})
    assert response.status == 400
