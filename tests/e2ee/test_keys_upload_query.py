"""/keys/upload and /keys/query against a real server."""

from __future__ import annotations

from tests.support.client import register_user
from tests.support.e2ee import Ed25519, device_keys_for, one_time_keys, setup_device, upload_keys
from tests.support.server import RunningServer
from tests.support.sync import shared_room, sync, sync_until

UPLOAD = "/_matrix/client/v3/keys/upload"
QUERY = "/_matrix/client/v3/keys/query"


def test_upload_and_query_device_keys(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    identity = Ed25519()
    keys = device_keys_for(alice, identity)
    body = upload_keys(alice, device_keys=keys, one_time_keys=one_time_keys(alice, identity, 5))
    assert body["one_time_key_counts"]["signed_curve25519"] == 5

    response = bob.post(QUERY, {"device_keys": {alice.user_id: []}})
    assert response.status == 200, response
    got = response.body["device_keys"][alice.user_id][alice.device_id]
    assert got["keys"] == keys["keys"]
    assert got["signatures"] == keys["signatures"]
    # No name yet: the key is left out rather than null; once named, the name shows.
    assert "device_display_name" not in got["unsigned"]
    assert alice.put(f"/_matrix/client/v3/devices/{alice.device_id}", {"display_name": "Laptop"}).status == 200
    response = bob.post(QUERY, {"device_keys": {alice.user_id: []}})
    assert response.body["device_keys"][alice.user_id][alice.device_id]["unsigned"] == {
        "device_display_name": "Laptop"}
    # Asking for one device only, and for an unknown device.
    response = bob.post(QUERY, {"device_keys": {alice.user_id: ["NOPE"]}})
    assert response.body["device_keys"][alice.user_id] == {}


def test_reupload_same_keys_is_quiet_and_new_identity_keys_replace_the_old(server: RunningServer) -> None:
    """A client that lost its store may reuse its device ID: Synapse takes the new keys."""
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    shared_room(alice, bob)
    identity = Ed25519()
    keys = device_keys_for(alice, identity)
    upload_keys(alice, device_keys=keys)
    token = sync(bob)["next_batch"]
    assert alice.post(UPLOAD, {"device_keys": keys}).status == 200
    # The same keys again change nothing, so nobody is told to re-query.
    assert alice.user_id not in sync(bob, token).get("device_lists", {}).get("changed", [])

    other = device_keys_for(alice, Ed25519())
    response = alice.post(UPLOAD, {"device_keys": other})
    assert response.status == 200, response
    got = bob.post(QUERY, {"device_keys": {alice.user_id: [alice.device_id]}})
    assert got.body["device_keys"][alice.user_id][alice.device_id]["keys"] == other["keys"]
    # Everyone sharing a room hears of the change, so their clients re-query.
    body, _ = sync_until(bob, token, lambda b: alice.user_id in b.get("device_lists", {}).get("changed", []))
    assert alice.user_id in body["device_lists"]["changed"]
    log = (server.directory / "homeserver.log").read_text()
    assert f"Device {alice.device_id} of {alice.user_id} uploaded new identity keys" in log
    # Still only for the uploading device: another user's or device's keys are refused.
    for field, value in (("user_id", bob.user_id), ("device_id", "SOMEONEELSE")):
        response = alice.post(UPLOAD, {"device_keys": {**other, field: value}})
        assert (response.status, response.errcode) == (400, "M_INVALID_PARAM"), field
    got = bob.post(QUERY, {"device_keys": {alice.user_id: [alice.device_id]}})
    assert got.body["device_keys"][alice.user_id][alice.device_id]["keys"] == other["keys"]


def test_device_keys_must_be_self_signed_and_for_the_uploading_device(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    identity = Ed25519()
    keys = device_keys_for(alice, identity)
    bad = dict(keys, keys={**keys["keys"], f"curve25519:{alice.device_id}": "changedchangedchanged"})
    response = alice.post(UPLOAD, {"device_keys": bad})
    assert (response.status, response.errcode) == (400, "M_INVALID_SIGNATURE")
    unsigned = {k: v for k, v in keys.items() if k != "signatures"}
    assert alice.post(UPLOAD, {"device_keys": unsigned}).errcode == "M_BAD_JSON"
    wrong_device = identity.sign({**unsigned, "device_id": "OTHER"}, alice.user_id, "ed25519:OTHER")
    assert alice.post(UPLOAD, {"device_keys": wrong_device}).errcode == "M_INVALID_PARAM"
    # Nothing was stored by the failed attempts.
    query = alice.post(QUERY, {"device_keys": {alice.user_id: []}})
    assert query.body["device_keys"][alice.user_id] == {}


def test_malformed_uploads_are_400s(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    identity = setup_device(alice)
    cases = [
        {"device_keys": "nope"},
        {"device_keys": {"user_id": alice.user_id}},
        {"one_time_keys": []},
        {"one_time_keys": {"no_colon": "abc"}},
        {"one_time_keys": {"signed_curve25519:A": 5}},
        {"one_time_keys": {"signed_curve25519:A": {"nokey": 1}}},
        {"fallback_keys": {"signed_curve25519:A": "x", "signed_curve25519:B": "y"}},
        {"one_time_keys": {"signed_curve25519:A": {"key": "x", "signatures": "bad"}}},
    ]
    for body in cases:
        response = alice.post(UPLOAD, body)
        assert response.status == 400, (body, response)
        assert response.errcode in ("M_BAD_JSON", "M_INVALID_PARAM"), (body, response)
    assert alice.post(UPLOAD, raw=b"{not json").errcode == "M_NOT_JSON"
    too_many = one_time_keys(alice, identity, 1001)
    assert alice.post(UPLOAD, {"one_time_keys": too_many}).errcode == "M_TOO_LARGE"
    assert alice.post(UPLOAD, {}, token=False).errcode == "M_MISSING_TOKEN"


def test_one_time_key_reupload_with_different_content_is_refused(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    identity = setup_device(alice)
    first = one_time_keys(alice, identity, 2)
    upload_keys(alice, one_time_keys=first)
    assert upload_keys(alice, one_time_keys=first)["one_time_key_counts"]["signed_curve25519"] == 2
    changed = one_time_keys(alice, identity, 1)
    response = alice.post(UPLOAD, {"one_time_keys": changed})
    assert (response.status, response.errcode) == (400, "M_INVALID_PARAM")


def test_query_bad_input_and_remote_users(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    assert alice.post(QUERY, {}).status == 400
    assert alice.post(QUERY, {"device_keys": {"not-a-user": []}}).errcode == "M_INVALID_PARAM"
    assert alice.post(QUERY, {"device_keys": {alice.user_id: "x"}}).errcode == "M_BAD_JSON"
    response = alice.post(QUERY, {"device_keys": {"@bob:elsewhere.example": []}})
    assert response.status == 200
    assert "@bob:elsewhere.example" not in response.body["device_keys"]
    assert "elsewhere.example" in response.body["failures"]


def test_legacy_upload_path_with_device_id(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    response = alice.post(f"/_matrix/client/r0/keys/upload/{alice.device_id}", {})
    assert response.status == 200, response
    assert response.body["one_time_key_counts"] == {"signed_curve25519": 0}
