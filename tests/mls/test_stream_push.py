"""Commits pushed to many WebSocket streams at once: each stream gets each commit once, in epoch order.

One commit's section is the same for every member, so the server encodes it once and sends the
same bytes to every idle stream (homeserver/sync/providers/mls.py MlsPush); a stream that has not
acknowledged its last frame gets the commits in its next built frame instead. Both must add up to
the same: every commit once, in order, and a token from which /sync carries nothing twice.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.client import register_user
from tests.support.mls import MlsDevice, login, mls_room_with
from tests.support.sync import StreamClient, sync


def commit_epochs(frame: dict[str, Any], room_id: str) -> list[int]:
    return [c["epoch"] for c in frame.get("org.vignette.mls", {}).get("rooms", {}).get(room_id, {})
            .get("commits", [])]


@pytest.fixture(scope="module")
def group(server):
    alice = MlsDevice(register_user(server.base_url))
    bob_http = register_user(server.base_url)
    bobs = [MlsDevice(bob_http), login(server.base_url, bob_http), login(server.base_url, bob_http)]
    room_id = mls_room_with(alice, *bobs)
    return room_id, alice, bobs


def test_each_stream_gets_each_commit_once_in_order(group) -> None:
    room_id, alice, bobs = group
    for bob in bobs:
        bob.sync()
    streams = [StreamClient.connect(bob.http, since=bob.since) for bob in bobs]
    try:
        first = alice.group_epoch()
        for _ in range(2):
            assert alice.commit_and_apply(alice.group.commit()).status == 200
        wanted = [first, first + 1]
        # The first two streams acknowledge each frame; the last holds its first frame unacknowledged
        # for a while, so the second commit reaches it in a built frame, not a pushed one.
        for bob, stream in zip(bobs[:2], streams[:2], strict=True):
            seen: list[int] = []
            while len(seen) < 2:
                frame = stream.next_frame()
                seen += commit_epochs(frame, room_id)
                assert bob.apply_commits(frame) == commit_epochs(frame, room_id)
            assert seen == wanted
        lagging, stream = bobs[2], streams[2]
        frame = stream.next_frame(ack=False)
        seen = commit_epochs(frame, room_id)
        assert lagging.apply_commits(frame) == seen
        stream.ack(frame["next_batch"])
        while len(seen) < 2:
            frame = stream.next_frame()
            seen += commit_epochs(frame, room_id)
            lagging.apply_commits(frame)
        assert seen == wanted
        # Resuming /sync from the last frame's token brings neither commit again.
        for bob, client in zip(bobs, streams, strict=True):
            assert commit_epochs(sync(bob.http, client.last_token), room_id) == []
            assert bob.group_epoch() == alice.group_epoch()
        # And the group still works: a message from alice reaches every stream, and decrypts.
        alice.send(b"after two pushed commits")
        assert_each_decrypts(bobs, streams, b"after two pushed commits")
    finally:
        for stream in streams:
            stream.close()


def test_welcome_notes_reach_the_joiners_streams_once(group) -> None:
    room_id, alice, bobs = group
    joiners = [login(alice_url(bobs[0]), bobs[0].http) for _ in range(3)]
    for joiner in joiners:
        joiner.upload_key_packages(1)
        joiner.sync()
    streams = [StreamClient.connect(joiner.http, since=joiner.since) for joiner in joiners]
    try:
        kps = alice.claim({joiners[0].user_id: [j.device_id for j in joiners]})
        epoch = alice.group_epoch()
        assert alice.commit_and_apply(alice.group.add_members(kps)).status == 200
        for joiner, stream in zip(joiners, streams, strict=True):
            frame = stream.next_frame()
            while not frame.get("to_device", {}).get("events"):
                frame = stream.next_frame()
            notes = frame["to_device"]["events"]
            assert [(n["type"], n["content"]) for n in notes] == [
                ("org.vignette.mls.welcome", {"room_id": room_id, "epoch": epoch})]
            assert joiner.join_from_welcome(frame) == epoch
            assert joiner.group_epoch() == alice.group_epoch()
            # Acknowledged by the stream's token: /sync from it does not deliver the note again.
            assert sync(joiner.http, stream.last_token).get("to_device", {}).get("events", []) == []
        alice.send(b"welcome, all three")
        assert_each_decrypts(joiners, streams, b"welcome, all three")
    finally:
        for stream in streams:
            stream.close()


def assert_each_decrypts(devices: list[MlsDevice], streams: list[StreamClient], plaintext: bytes) -> None:
    """Each device reads frames from its own stream until a message arrives; it must be ``plaintext``."""
    for device, stream in zip(devices, streams, strict=True):
        received: list[bytes] = []
        while not received:
            received = device.received(stream.next_frame())
        assert received == [plaintext]


def alice_url(device: MlsDevice) -> str:
    return str(device.http.base_url)
