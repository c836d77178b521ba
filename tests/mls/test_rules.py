"""The delivery service's rules: one winner per epoch, stale epochs, bad input, who may commit."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.support.client import q, register_user
from tests.support.e2ee import database_rows
from tests.support.mls import (
    KP_ALGORITHM,
    MLS_PREFIX,
    MlsDevice,
    b64,
    login,
    mls_room_with,
    new_client,
)

COMMIT = MLS_PREFIX + "/rooms/{}/commit"


@pytest.fixture(scope="module")
def group(server):
    alice, bob = MlsDevice(register_user(server.base_url)), MlsDevice(register_user(server.base_url))
    room_id = mls_room_with(alice, bob)
    return server, room_id, alice, bob


def commit_count(server, room_id: str) -> int:
    return int(database_rows(server, "SELECT COUNT(*) FROM mls_commits WHERE room_id = ?", room_id)[0][0])


def test_racing_commits_exactly_one_wins(group) -> None:
    server, room_id, alice, bob = group
    outputs = {alice: alice.group.commit(), bob: bob.group.commit()}
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
    statuses = sorted(r.status for r in results.values())
    assert statuses == [200, 409], results
    winner = next(d for d, r in results.items() if r.status == 200)
    loser = next(d for d, r in results.items() if r.status == 409)
    assert results[loser].errcode == "ORG_VIGNETTE_MLS_EPOCH_CONFLICT"
    assert results[loser].body["current_epoch"] == 2
    winner.group.process_incoming_message(outputs[winner].commit_message)
    assert loser.apply_commits(loser.sync()) == [1]
    winner.sync()
    assert loser.group_epoch() == winner.group_epoch() == 2
    loser.send(b"still in sync")
    assert winner.received(winner.sync()) == [b"still in sync"]
    # Retrying the winner's commit (a lost response) answers 200 again and changes nothing.
    retry = winner.post_commit(outputs[winner])
    assert retry.status == 200 and retry.body == {"epoch": 2}
    assert commit_count(server, room_id) == 2
    # The loser's stale commit stays refused.
    again = loser.post_commit(outputs[loser])
    assert again.status == 409 and again.body["current_epoch"] == 2


def test_stale_and_future_epoch_messages_are_refused(group) -> None:
    server, room_id, alice, bob = group
    old_ciphertext = bob.group.encrypt_application_message(b"from an old epoch").to_bytes()
    for _ in range(4):  # mls_epoch_lag is 3
        assert alice.commit_and_apply(alice.group.commit()).status == 200
        bob.apply_commits(bob.sync())
    response = bob.http.put(f"/_matrix/client/v3/rooms/{q(room_id)}/send/org.vignette.mls.message/stale1",
                            {"message": b64(old_ciphertext)})
    assert response.status == 400 and response.body["current_epoch"] == alice.group_epoch()
    bob.send(b"current epoch is fine")
    # A message for another group, and bytes that are no MLS message at all.
    other = new_client(f"{bob.user_id}|{bob.device_id}").create_group(b"!other:test.local")
    foreign = other.encrypt_application_message(b"x").to_bytes()
    for message in (b64(foreign), b64(b"\x00\x01\x00\x02junk"), "not base64!", 5):
        response = bob.http.put(f"/_matrix/client/v3/rooms/{q(room_id)}/send/org.vignette.mls.message/t{message!s:.8}",
                                {"message": message})
        assert response.status == 400, response


def test_bad_key_packages_are_refused(group) -> None:
    server, room_id, alice, bob = group
    someone_else = new_client("@mallory:test.local|EVIL").generate_key_package_message().to_bytes()
    other_device = new_client(f"{bob.user_id}|NOTMINE").generate_key_package_message().to_bytes()
    good = bob.mls.generate_key_package_message().to_bytes()
    wrong_suite = good[:2] + b"\x00\x05" + good[4:6] + b"\x00\x07" + good[8:]
    for value in (b64(someone_else), b64(other_device), b64(good[:40]), b64(good + b"\x00"), b64(wrong_suite),
                  "!!!", {"key": "x"}):
        for field in ("one_time_keys", "fallback_keys"):
            response = bob.http.post("/_matrix/client/v3/keys/upload", {field: {f"{KP_ALGORITHM}:bad": value}})
            assert response.status == 400, (field, value, response)
            assert response.errcode in ("M_INVALID_PARAM", "M_BAD_JSON"), response
    counts = bob.http.post("/_matrix/client/v3/keys/upload", {}).body["one_time_key_counts"]
    assert counts.get(KP_ALGORITHM, 0) == 0


def test_bad_commits_change_nothing(group, server) -> None:
    server, room_id, alice, bob = group
    before = commit_count(server, room_id)
    path = COMMIT.format(q(room_id))
    output = alice.group.commit()
    commit = b64(output.commit_message.to_bytes())
    outsider = MlsDevice(register_user(server.base_url))
    cases = [
        (alice.http, {"commit": b64(b"\x00\x01\x00\x01garbage")}, 400),
        (alice.http, {"commit": "***"}, 400),
        (alice.http, {}, 400),
        (alice.http, {"commit": b64(bob.mls.generate_key_package_message().to_bytes())}, 400),
        (bob.http, {"commit": commit}, 403),  # alice's leaf, posted by bob
        (outsider.http, {"commit": commit}, 403),  # not in the room
    ]
    for client, body, status in cases:
        response = client.post(path, body)
        assert response.status == status, (body, response)
    response = alice.http.post(path, raw=b"{not json", token=True)
    assert response.status == 400
    big = "A" * (3 * 1024 * 1024)
    assert alice.http.post(path, {"commit": big}).status == 413
    assert commit_count(server, room_id) == before
    # The same commit is still good afterwards.
    assert alice.commit_and_apply(output).status == 200
    bob.apply_commits(bob.sync())


def test_welcome_for_unknown_key_package_is_refused(group) -> None:
    server, room_id, alice, bob = group
    bob3 = login(server.base_url, bob.http)
    # A KeyPackage the server never handed out (passed out of band) cannot get a Welcome routed.
    kp = bob3.mls.generate_key_package_message()
    alice.checkpoint()
    output = alice.group.add_members([kp])
    before = commit_count(server, room_id)
    response = alice.post_commit(output)
    assert response.status == 400 and response.errcode == "M_INVALID_PARAM", response
    assert commit_count(server, room_id) == before
    alice.discard_pending()


def test_adding_a_non_member_is_forbidden(group) -> None:
    server, room_id, alice, bob = group
    stranger = MlsDevice(register_user(server.base_url))
    stranger.upload_key_packages(1)
    alice.checkpoint()
    output = alice.group.add_members(alice.claim({stranger.user_id: [stranger.device_id]}))
    response = alice.post_commit(output)
    assert response.status == 403, response
    alice.discard_pending()


def test_commit_endpoints_check_the_room(group) -> None:
    server, room_id, alice, bob = group
    plain = alice.http.post("/_matrix/client/v3/createRoom", {"preset": "private_chat"}).body["room_id"]
    alice.checkpoint()
    response = alice.http.post(COMMIT.format(q(plain)), {"commit": b64(alice.group.commit().commit_message.to_bytes())})
    assert response.status == 400, response
    alice.discard_pending()
    assert alice.http.get(f"{MLS_PREFIX}/rooms/{q('not a room')}/commits").status == 400
    outsider = register_user(server.base_url)
    assert outsider.get(f"{MLS_PREFIX}/rooms/{q(room_id)}/commits").status == 403
    assert alice.http.get(f"{MLS_PREFIX}/rooms/{q(room_id)}/commits", params={"from_epoch": "x"}).status == 400
    assert bob.http.get(f"{MLS_PREFIX}/rooms/{q(room_id)}/welcome/0").status in (200, 404)
    assert outsider.get(f"{MLS_PREFIX}/rooms/{q(room_id)}/welcome/0").status == 404
    assert alice.http.get(f"{MLS_PREFIX}/rooms/{q(room_id)}/welcome/abc").status == 400


def test_future_epoch_commit_is_refused(group) -> None:
    server, room_id, alice, bob = group
    alice.checkpoint()
    skipped = alice.group.commit()
    alice.group.process_incoming_message(skipped.commit_message)  # applied locally, never posted
    response = alice.post_commit(alice.group.commit())
    assert response.status == 400 and response.errcode == "M_INVALID_PARAM", response
    assert response.body["current_epoch"] < alice.group_epoch()
    alice.discard_pending()


def test_only_the_winning_commits_welcome_is_delivered(group) -> None:
    server, room_id, alice, bob = group
    for device in (alice, bob):
        device.apply_commits(device.sync())
    newcomer_a, newcomer_b = login(server.base_url, bob.http), login(server.base_url, bob.http)
    for newcomer in (newcomer_a, newcomer_b):
        newcomer.upload_key_packages(1, fallback=False)
        newcomer.sync()
    alice.checkpoint()
    bob.checkpoint()
    outputs = {
        alice: alice.group.add_members(alice.claim({bob.user_id: [newcomer_a.device_id]})),
        bob: bob.group.add_members(bob.claim({bob.user_id: [newcomer_b.device_id]})),
    }
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
    assert sorted(r.status for r in results.values()) == [200, 409]
    winner = next(d for d, r in results.items() if r.status == 200)
    loser = next(d for d, r in results.items() if r.status == 409)
    welcomed, not_welcomed = (newcomer_a, newcomer_b) if winner is alice else (newcomer_b, newcomer_a)
    winner.group.process_incoming_message(outputs[winner].commit_message)
    loser.discard_pending()
    loser.apply_commits(loser.sync())
    assert welcomed.join_from_welcome(welcomed.sync()) >= 0
    body = not_welcomed.sync()
    assert not [e for e in body.get("to_device", {}).get("events", []) if e["type"] == "org.vignette.mls.welcome"]
    epoch = results[winner].body["epoch"] - 1
    assert not_welcomed.http.get(f"{MLS_PREFIX}/rooms/{q(room_id)}/welcome/{epoch}").status == 404
    winner.send(b"welcome aboard")
    assert welcomed.received(welcomed.sync()) == [b"welcome aboard"]
    assert loser.received(loser.sync()) == [b"welcome aboard"]
