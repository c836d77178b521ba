"""MLS across two Vignette servers (issue 17 item 7), with real mls-rs clients.

A (alice) created the room, so A is the group's delivery service; bob and carol are on B.
B forwards its users' commits to A and relays A's answer; A's accepted commits reach B (a
persisted notice, then B pulls A's log), so B's /sync delivers them like local ones.
"""

from __future__ import annotations

import threading
from typing import Any

import attrs
import pytest

from tests.support.client import Client, q, register_user
from tests.support.fed_pair import Pair
from tests.support.federation import FederationNet, ScriptedPeer
from tests.support.mls import ENCRYPTION, MLS_PREFIX, MlsDevice, b64, login
from tests.support.server import RunningServer
from tests.support.sync import StreamClient

FED_MLS = "/_matrix/federation/unstable/org.vignette.mls"
ATTEMPTS = 60


@attrs.define
class MlsPair:
    a: RunningServer
    b: RunningServer
    alice: MlsDevice  # on A, the room's creator: A is the DS
    bob: MlsDevice  # on B
    carol: MlsDevice  # on B
    room_id: str


def _device(base_url: str) -> MlsDevice:
    http: Client = register_user(base_url)  # with a password, for a second device's login
    return MlsDevice(http)


def login_device(server: RunningServer, user: MlsDevice) -> MlsDevice:
    return login(server.base_url, user.http)


def sync_until(device: MlsDevice, predicate: Any) -> dict[str, Any]:
    """Long-poll the device's /sync until ``predicate(body)`` (the body it was true for)."""
    for _ in range(ATTEMPTS):
        body = device.sync(timeout=2000)
        if predicate(body):
            return body
    raise AssertionError(f"{device.user_id} never saw the expected change")


def commits_in(device: MlsDevice, body: dict[str, Any]) -> list[dict[str, Any]]:
    return body.get("org.vignette.mls", {}).get("rooms", {}).get(device.room_id, {}).get("commits", [])


def welcome_in(body: dict[str, Any]) -> bool:
    return any(e["type"] == "org.vignette.mls.welcome" for e in body.get("to_device", {}).get("events", []))


def apply_until(device: MlsDevice, epoch: int) -> None:
    """Sync and process commits until the device's group is at ``epoch``."""
    for _ in range(ATTEMPTS):
        if device.group_epoch() >= epoch:
            return
        device.apply_commits(device.sync(timeout=2000))
    assert device.group_epoch() == epoch


def receive_until(device: MlsDevice, plaintext: bytes) -> None:
    got: list[bytes] = []
    for _ in range(ATTEMPTS):
        got += device.received(device.sync(timeout=2000))
        if plaintext in got:
            return
    raise AssertionError(f"{device.user_id} never decrypted {plaintext!r} (got {got})")


PAIR_PREFIX = "mls"


@pytest.fixture(scope="module")
def pair(pair: Pair) -> MlsPair:
    """The shared two servers, with an encrypted public room on A that bob and carol (on B) joined."""
    a, b = pair.a, pair.b
    alice, bob, carol = _device(a.base_url), _device(b.base_url), _device(b.base_url)
    # Public, so B's users join without an invite (remote invites are another issue's).
    created = alice.http.post("/_matrix/client/v3/createRoom",
                              {"preset": "public_chat", "initial_state": [ENCRYPTION]})
    assert created.status == 200, created
    room_id = created.body["room_id"]
    for joiner in (bob, carol):
        response = joiner.http.post(f"/_matrix/client/v3/join/{q(room_id)}", {},
                                    params={"server_name": a.server_name})
        assert response.status == 200, (response, b.output()[-3000:])
    for device in (alice, bob, carol):
        device.sync()
    return MlsPair(a, b, alice, bob, carol, room_id)


def test_remote_members_join_and_a_forwarded_commit_reaches_everyone(pair: MlsPair) -> None:
    alice, bob, carol = pair.alice, pair.bob, pair.carol
    for joiner in (bob, carol):
        joiner.upload_key_packages(1)
    # Remote KeyPackages come through the federation /keys/claim.
    key_packages = alice.claim({bob.user_id: [bob.device_id], carol.user_id: [carol.device_id]})
    assert len(key_packages) == 2
    alice.create_group(pair.room_id)
    response = alice.commit_and_apply(alice.group.add_members(key_packages))
    assert response.status == 200 and response.body == {"epoch": 1}, response

    # B got the commit with its Welcome from A and serves the Welcome to its own devices.
    for joiner in (bob, carol):
        body = sync_until(joiner, welcome_in)
        assert joiner.join_from_welcome(body) == 0
        assert joiner.group_epoch() == 1

    alice.send(b"hello from A")
    for joiner in (bob, carol):
        receive_until(joiner, b"hello from A")
    bob.send(b"hello from B")
    receive_until(alice, b"hello from B")

    # bob's update goes to B's commit endpoint, is forwarded to A, and A's 200 is relayed.
    response = bob.commit_and_apply(bob.group.commit())
    assert response.status == 200 and response.body == {"epoch": 2}, response
    body = sync_until(carol, lambda b: commits_in(carol, b))
    assert [c["epoch"] for c in commits_in(carol, body)] == [1]
    assert commits_in(carol, body)[0]["sender"] == bob.user_id
    assert carol.apply_commits(body) == [1]
    apply_until(alice, 2)
    # B's log is a copy of A's: the same commit at the same epoch.
    log_a = alice.http.get(f"{MLS_PREFIX}/rooms/{q(pair.room_id)}/commits", params={"from_epoch": 0})
    log_b = carol.http.get(f"{MLS_PREFIX}/rooms/{q(pair.room_id)}/commits", params={"from_epoch": 0})
    assert log_a.status == log_b.status == 200
    assert log_a.body == log_b.body and log_b.body["epoch"] == 2

    carol.send(b"after bob's update")
    receive_until(alice, b"after bob's update")
    receive_until(bob, b"after bob's update")


def test_racing_commits_from_both_servers_exactly_one_wins(pair: MlsPair) -> None:
    alice, bob, carol = pair.alice, pair.bob, pair.carol
    epoch = alice.group_epoch()
    for device in (alice, carol):
        device.checkpoint()
    outputs = {alice: alice.group.commit(), carol: carol.group.commit()}
    results: dict[MlsDevice, Any] = {}
    barrier = threading.Barrier(2)

    def post(device: MlsDevice) -> None:
        barrier.wait()
        results[device] = device.post_commit(outputs[device])

    threads = [threading.Thread(target=post, args=(d,)) for d in outputs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status for r in results.values()) == [200, 409], results
    winner = next(d for d, r in results.items() if r.status == 200)
    loser = next(d for d, r in results.items() if r.status == 409)
    assert results[winner].body == {"epoch": epoch + 1}
    assert results[loser].body["errcode"] == "ORG_VIGNETTE_MLS_EPOCH_CONFLICT"
    assert results[loser].body["current_epoch"] == epoch + 1
    winner.group.process_incoming_message(outputs[winner].commit_message)
    loser.discard_pending()
    for device in (loser, bob):
        apply_until(device, epoch + 1)
    loser.send(b"the loser caught up")
    for device in (winner, bob):
        receive_until(device, b"the loser caught up")
    # Both servers logged the same single commit for that epoch.
    for device in (alice, carol):
        log = device.http.get(f"{MLS_PREFIX}/rooms/{q(pair.room_id)}/commits", params={"from_epoch": epoch})
        assert log.status == 200 and [c["sender"] for c in log.body["commits"]] == [winner.user_id], log


def test_the_ds_commits_reach_the_other_servers_websocket_stream(pair: MlsPair) -> None:
    alice, bob, carol = pair.alice, pair.bob, pair.carol
    for device in (bob, carol):
        apply_until(device, alice.group_epoch())
    carol.sync()
    stream = StreamClient.connect(carol.http, since=carol.since)
    try:
        epoch = alice.group_epoch()
        assert alice.commit_and_apply(alice.group.commit()).status == 200
        frame = stream.next_frame()
        while not commits_in(carol, frame):
            frame = stream.next_frame()
        assert [c["epoch"] for c in commits_in(carol, frame)] == [epoch]
        assert carol.apply_commits(frame) == [epoch]
        carol.since = stream.last_token
    finally:
        stream.ws.close()
    apply_until(bob, epoch + 1)


def test_forwarded_bad_commits_get_the_ds_matrix_errors(pair: MlsPair) -> None:
    bob = pair.bob
    url = f"{MLS_PREFIX}/rooms/{q(pair.room_id)}/commit"
    garbage = bob.http.post(url, {"commit": b64(b"\x00\x01 not mls")})
    assert garbage.status == 400 and garbage.body["errcode"] == "M_INVALID_PARAM", garbage
    foreign = bob.mls.create_group(pair.room_id.encode()).commit().commit_message.to_bytes()
    stale = bob.http.post(url, {"commit": b64(foreign)})  # an epoch-0 commit, for a group past epoch 0
    assert stale.status == 409 and stale.body["current_epoch"] == bob.group_epoch(), stale
    not_base64 = bob.http.post(url, {"commit": "!!!"})
    assert not_base64.status == 400 and not_base64.body["errcode"] == "M_BAD_JSON", not_base64


def test_hostile_peer_on_the_federation_endpoints(pair: MlsPair, fednet: FederationNet) -> None:
    peer = ScriptedPeer(fednet)
    try:
        commit_uri = f"{FED_MLS}/commit/{q(pair.room_id)}"
        body = {"user_id": pair.alice.user_id, "device_id": pair.alice.device_id, "commit": "AAAA"}
        unsigned = peer.request("PUT", pair.a, commit_uri, body, authorization=False)
        assert unsigned.status_code == 401 and unsigned.json()["errcode"] == "M_UNAUTHORIZED"
        # A server may forward only its own users' commits...
        spoofed = peer.request("PUT", pair.a, commit_uri, body)
        assert spoofed.status_code == 403 and spoofed.json()["errcode"] == "M_FORBIDDEN", spoofed.text
        # ... and only for users joined to the room.
        own = {"user_id": f"@mallory:{peer.server_name}", "device_id": "M", "commit": "AAAA"}
        outsider = peer.request("PUT", pair.a, commit_uri, own)
        assert outsider.status_code == 403 and outsider.json()["errcode"] == "M_FORBIDDEN", outsider.text
        for bad, errcode in (([1, 2], "M_NOT_JSON"), ({"user_id": 5, "device_id": "D"}, "M_INVALID_PARAM"),
                             ({"user_id": own["user_id"]}, "M_MISSING_PARAM")):
            answer = peer.request("PUT", pair.a, commit_uri, bad)
            assert answer.status_code == 400 and answer.json()["errcode"] == errcode, (bad, answer.text)
        not_json = peer.request("PUT", pair.a, commit_uri, raw_body=b"{nope", authorization="X-Matrix nope")
        assert not_json.status_code == 400 and not_json.json()["errcode"] == "M_NOT_JSON", not_json.text
        # A valid user of the peer that is joined nowhere, with a commit that is not MLS: still 403 first.
        garbage = peer.request("PUT", pair.a, commit_uri, {**own, "commit": "!!"})
        assert garbage.status_code == 403, garbage.text
        bad_room = peer.request("PUT", pair.a, f"{FED_MLS}/commit/{q('not-a-room')}", own)
        assert bad_room.status_code == 400 and bad_room.json()["errcode"] == "M_INVALID_PARAM", bad_room.text
        # The log is for servers with a member in the room.
        log = peer.request("GET", pair.a, f"{FED_MLS}/commits/{q(pair.room_id)}?from_epoch=0")
        assert log.status_code == 403 and log.json()["errcode"] == "M_FORBIDDEN", log.text
        negative = peer.request("GET", pair.a, f"{FED_MLS}/commits/{q(pair.room_id)}?from_epoch=-1")
        assert negative.status_code == 400, negative.text
        # Nothing changed: the group is where it was.
        log = pair.alice.http.get(f"{MLS_PREFIX}/rooms/{q(pair.room_id)}/commits", params={"from_epoch": 0})
        assert log.body["epoch"] == pair.alice.group_epoch()
    finally:
        peer.stop()


def test_a_welcome_for_a_key_package_its_server_never_handed_out_is_not_delivered(pair: MlsPair) -> None:
    alice, bob = pair.alice, pair.bob
    stranger = login_device(pair.b, bob)
    stranger.sync()
    # A KeyPackage passed by hand, never uploaded to or claimed from B.
    handed = stranger.mls.generate_key_package_message()
    apply_until(bob, alice.group_epoch())
    epoch = alice.group_epoch()
    response = alice.commit_and_apply(alice.group.add_members([handed]))
    assert response.status == 200, response  # the DS cannot tell; B checks its own refs
    apply_until(bob, epoch + 1)  # B has the commit...
    body = stranger.sync()
    assert not welcome_in(body)  # ... but keeps no Welcome for a ref it never handed out
    missing = stranger.http.get(f"{MLS_PREFIX}/rooms/{q(pair.room_id)}/welcome/{epoch}")
    assert missing.status == 404 and missing.body["errcode"] == "M_NOT_FOUND", missing


def test_commits_accepted_while_a_copying_server_is_down_reach_it_after_its_restart(pair: MlsPair) -> None:
    alice, bob, carol = pair.alice, pair.bob, pair.carol
    for device in (bob, carol):
        apply_until(device, alice.group_epoch())
    epoch = alice.group_epoch()
    pair.b.stop()
    try:
        for _ in range(2):  # two commits B misses: a gap of two epochs
            assert alice.commit_and_apply(alice.group.commit()).status == 200
    finally:
        pair.b.start()
    for device in (bob, carol):
        apply_until(device, epoch + 2)
    log = carol.http.get(f"{MLS_PREFIX}/rooms/{q(pair.room_id)}/commits", params={"from_epoch": epoch})
    assert [c["epoch"] for c in log.body["commits"]] == [epoch, epoch + 1] and log.body["epoch"] == epoch + 2
    alice.send(b"after B came back")
    receive_until(carol, b"after B came back")


def test_while_the_ds_is_down_commits_fail_and_messages_flow(pair: MlsPair) -> None:
    bob, carol = pair.bob, pair.carol
    apply_until(bob, pair.alice.group_epoch())
    apply_until(carol, pair.alice.group_epoch())
    epoch = bob.group_epoch()
    pair.a.stop()
    try:
        bob.checkpoint()
        response = bob.post_commit(bob.group.commit())
        assert response.status == 502 and response.body["errcode"] == "M_UNKNOWN", response
        assert response.body["ds_server"] == pair.a.server_name
        bob.discard_pending()
        # Within the current epoch, messages still flow on B.
        bob.send(b"while A is down")
        receive_until(carol, b"while A is down")
        assert bob.group_epoch() == epoch
    finally:
        pair.a.start()
    # A is back: commits are accepted again and reach both servers.
    response = bob.commit_and_apply(bob.group.commit())
    assert response.status == 200 and response.body == {"epoch": epoch + 1}, response
    apply_until(carol, epoch + 1)
    apply_until(pair.alice, epoch + 1)
