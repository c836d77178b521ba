"""The MLS delivery service driven by real mls-rs clients: three devices on two users."""

from __future__ import annotations

import pytest

from tests.support.client import q, register_user
from tests.support.e2ee import database_text
from tests.support.mls import KP_ALGORITHM, MLS_PREFIX, MlsDevice, b64, create_mls_room, login
from tests.support.sync import StreamClient, invite, join

RESPONSES: list[bytes] = []
SECRETS = (b"hello bob, secretly", b"hi alice, from b1", b"after the update", b"bob2 must not read this",
           b"over the stream")


@pytest.fixture(scope="module")
def trio(server):
    """alice (device A) creates an MLS room; bob has devices B1 and B2."""
    alice_http = register_user(server.base_url)
    bob_http = register_user(server.base_url)
    alice, bob1, bob2 = MlsDevice(alice_http), MlsDevice(bob_http), login(server.base_url, bob_http)
    for device in (alice, bob1, bob2):  # keep every response body, to look for plaintext in them
        device.http.session.hooks["response"].append(lambda r, *args, **kwargs: RESPONSES.append(r.content))
    room_id = create_mls_room(alice_http)
    invite(alice_http, room_id, bob1.user_id)
    join(bob_http, room_id)
    for device in (alice, bob1, bob2):
        device.sync()
    return server, room_id, alice, bob1, bob2


def test_three_devices_two_users(trio) -> None:
    server, room_id, alice, bob1, bob2 = trio
    counts = bob1.upload_key_packages(2)
    assert counts[KP_ALGORITHM] == 2
    bob2.upload_key_packages(1)
    assert bob1.sync()["device_one_time_keys_count"][KP_ALGORITHM] == 2
    kps = alice.claim({bob1.user_id: [bob1.device_id, bob2.device_id]})
    assert len(kps) == 2
    assert bob1.sync()["device_one_time_keys_count"][KP_ALGORITHM] == 1

    alice.create_group(room_id)
    added = alice.group.add_members(kps)
    response = alice.commit_and_apply(added)
    assert response.status == 200 and response.body == {"epoch": 1}, response

    for bob in (bob1, bob2):
        body = bob.sync()
        assert bob.join_from_welcome(body) == 0
        assert body["org.vignette.mls"]["rooms"][room_id]["epoch"] == 1
        assert body["org.vignette.mls"]["rooms"][room_id]["commits"] == []  # joiners start from the Welcome
        assert bob.group_epoch() == 1

    alice.send(b"hello bob, secretly")
    for bob in (bob1, bob2):
        assert bob.received(bob.sync()) == [b"hello bob, secretly"]
    bob1.send(b"hi alice, from b1")
    assert alice.received(alice.sync()) == [b"hi alice, from b1"]
    assert bob2.received(bob2.sync()) == [b"hi alice, from b1"]

    # An update from bob2 moves everyone to epoch 2.
    assert bob2.commit_and_apply(bob2.group.commit()).status == 200
    for device in (alice, bob1):
        assert device.apply_commits(device.sync()) == [1]
    bob1.send(b"after the update")
    assert alice.received(alice.sync()) == [b"after the update"]

    # alice removes bob2; bob2 can no longer read what follows.
    removal = alice.group.remove_members([bob2.mls.signing_identity()])
    assert alice.commit_and_apply(removal).status == 200
    assert bob1.apply_commits(bob1.sync()) == [2]
    body = bob2.sync()
    assert bob2.apply_commits(body) == [2]  # processing its own removal
    alice.send(b"bob2 must not read this")
    assert bob1.received(bob1.sync()) == [b"bob2 must not read this"]
    assert bob2.received(bob2.sync()) == []

    log = alice.http.get(f"{MLS_PREFIX}/rooms/{q(room_id)}/commits", params={"from_epoch": 1})
    assert log.status == 200 and [c["epoch"] for c in log.body["commits"]] == [1, 2]
    assert log.body["epoch"] == 3

    # No plaintext in any response or any database row.
    assert len(RESPONSES) > 20
    text = database_text(server)
    for secret in SECRETS[:4]:
        assert secret.decode() not in text
        assert not any(secret in body for body in RESPONSES)


def test_commits_and_messages_over_the_websocket_stream(trio) -> None:
    server, room_id, alice, bob1, bob2 = trio
    bob1.sync()
    stream = StreamClient.connect(bob1.http, since=bob1.since)
    frames: list[bytes] = []
    recv = stream.ws.recv

    def recording_recv() -> str:
        message = recv()
        frames.append(message.encode() if isinstance(message, str) else message)
        return message

    stream.ws.recv = recording_recv
    try:
        assert alice.commit_and_apply(alice.group.commit()).status == 200
        epoch = alice.group_epoch() - 1
        frame = stream.next_frame()
        while room_id not in frame.get("org.vignette.mls", {}).get("rooms", {}):
            frame = stream.next_frame()
        assert [c["epoch"] for c in frame["org.vignette.mls"]["rooms"][room_id]["commits"]] == [epoch]
        assert bob1.apply_commits(frame) == [epoch]
        alice.send(b"over the stream")
        received: list[bytes] = []
        while not received:
            received = bob1.received(stream.next_frame())
        assert received == [b"over the stream"]
        # Sending over the stream goes through the same checks: a message for another group is refused.
        foreign = bob1.mls.create_group(b"!elsewhere:test.local").encrypt_application_message(b"x").to_bytes()
        reply = stream.request("send", room_id=room_id, event_type="org.vignette.mls.message",
                               txn_id="ws-foreign", content={"message": b64(foreign)})
        assert reply["type"] == "error", reply
    finally:
        stream.close()
    assert b"over the stream".decode() not in database_text(server)
    assert frames and not any(b"over the stream" in body for body in RESPONSES + frames)
