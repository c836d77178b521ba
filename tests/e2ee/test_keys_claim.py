"""/keys/claim: each one-time key handed out once, oldest first, then the fallback key."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.support.client import register_user
from tests.support.e2ee import claim, one_time_keys, setup_device, upload_keys
from tests.support.server import RunningServer

CLAIM = "/_matrix/client/v3/keys/claim"
UPLOAD = "/_matrix/client/v3/keys/upload"


def test_keys_are_claimed_in_upload_order(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    identity = setup_device(alice)
    # Two uploads; within and across uploads the order must be kept, not the key ids' order.
    first = one_time_keys(alice, identity, 3, prefix="z")
    second = one_time_keys(alice, identity, 2, prefix="a")
    upload_keys(alice, one_time_keys=first)
    upload_keys(alice, one_time_keys=second)
    claimed = [next(iter(claim(bob, alice.user_id, alice.device_id))) for _ in range(5)]
    assert claimed == list(first) + list(second)
    assert claim(bob, alice.user_id, alice.device_id) == {}
    counts = upload_keys(alice)["one_time_key_counts"]
    assert counts["signed_curve25519"] == 0


def test_concurrent_claimers_never_share_a_key(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    identity = setup_device(alice)
    upload_keys(alice, one_time_keys=one_time_keys(alice, identity, 15))
    claimers = [register_user(server.base_url) for _ in range(20)]

    def claim_one(client):  # type: ignore[no-untyped-def]
        return claim(client, alice.user_id, alice.device_id)

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(claim_one, claimers))
    handed_out = [key_id for result in results for key_id in result]
    assert len(handed_out) == 15
    assert len(set(handed_out)) == 15
    assert sum(1 for result in results if not result) == 5


def test_fallback_key_when_one_time_keys_run_out(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    identity = setup_device(alice)
    fallback = one_time_keys(alice, identity, 1, prefix="fb")
    fallback_id = next(iter(fallback))
    fallback[fallback_id]["fallback"] = True
    upload_keys(alice, one_time_keys=one_time_keys(alice, identity, 1),
                **{"org.matrix.msc2732.fallback_keys": fallback})
    assert next(iter(claim(bob, alice.user_id, alice.device_id))) != fallback_id
    # Now only the fallback key is left: it is handed out, repeatedly, and marked used.
    for _ in range(2):
        got = claim(bob, alice.user_id, alice.device_id)
        assert got == {fallback_id: fallback[fallback_id]}
    # Re-uploading the same fallback key keeps it used; a new one is unused.
    upload_keys(alice, fallback_keys=fallback)
    assert claim(bob, alice.user_id, alice.device_id) == {fallback_id: fallback[fallback_id]}
    new_fallback = one_time_keys(alice, identity, 1, prefix="fb2")
    upload_keys(alice, fallback_keys=new_fallback)
    assert claim(bob, alice.user_id, alice.device_id) == new_fallback


def test_claim_bad_input(server: RunningServer) -> None:
    bob = register_user(server.base_url)
    assert bob.post(CLAIM, {}).status == 400
    assert bob.post(CLAIM, {"one_time_keys": []}).errcode == "M_BAD_JSON"
    assert bob.post(CLAIM, {"one_time_keys": {"nope": {}}}).errcode == "M_INVALID_PARAM"
    assert bob.post(CLAIM, {"one_time_keys": {bob.user_id: {"DEV": 5}}}).errcode == "M_BAD_JSON"
    response = bob.post(CLAIM, {"one_time_keys": {bob.user_id: {"NODEVICE": "signed_curve25519"},
                                                  "@x:remote.example": {"D": "signed_curve25519"}}})
    assert response.status == 200
    assert response.body["one_time_keys"] == {}
    assert "remote.example" in response.body["failures"]
    many = {f"@u{i}:test.local": {"D": "signed_curve25519"} for i in range(10_001)}
    assert bob.post(CLAIM, {"one_time_keys": many}).errcode == "M_TOO_LARGE"
