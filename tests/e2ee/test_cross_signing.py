"""Cross-signing keys and signatures, as clients set them up during verification."""

from __future__ import annotations

from typing import Any

from tests.support.client import Client, register_user
from tests.support.e2ee import Ed25519, cross_signing_key, setup_device
from tests.support.server import RunningServer

SIGNING_UPLOAD = "/_matrix/client/v3/keys/device_signing/upload"
SIGNATURES_UPLOAD = "/_matrix/client/v3/keys/signatures/upload"
QUERY = "/_matrix/client/v3/keys/query"
PASSWORD = "correct horse battery"


def bootstrap(client: Client) -> tuple[Ed25519, Ed25519, Ed25519]:
    assert client.user_id
    master, self_signing, user_signing = Ed25519(), Ed25519(), Ed25519()
    body = {
        "master_key": cross_signing_key(client.user_id, "master", master),
        "self_signing_key": cross_signing_key(client.user_id, "self_signing", self_signing, master),
        "user_signing_key": cross_signing_key(client.user_id, "user_signing", user_signing, master),
    }
    response = client.post(SIGNING_UPLOAD, body)
    assert response.status == 200, response
    return master, self_signing, user_signing


def query(client: Client, user_id: str) -> dict[str, Any]:
    response = client.post(QUERY, {"device_keys": {user_id: []}})
    assert response.status == 200, response
    return response.body


def test_first_upload_needs_no_password_and_keys_are_visible(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    master, self_signing, user_signing = bootstrap(alice)
    seen_by_bob = query(bob, alice.user_id)
    assert seen_by_bob["master_keys"][alice.user_id]["keys"] == {f"ed25519:{master.public}": master.public}
    assert alice.user_id in seen_by_bob["self_signing_keys"]
    assert alice.user_id not in seen_by_bob["user_signing_keys"]
    seen_by_alice = query(alice, alice.user_id)
    assert alice.user_id in seen_by_alice["user_signing_keys"]


def test_replacing_keys_needs_the_password(server: RunningServer) -> None:
    alice = register_user(server.base_url, password=PASSWORD)
    bootstrap(alice)
    new_master = Ed25519()
    body: dict[str, Any] = {"master_key": cross_signing_key(alice.user_id or "", "master", new_master)}
    challenge = alice.post(SIGNING_UPLOAD, body)
    assert challenge.status == 401
    assert {"stages": ["m.login.password"]} in challenge.body["flows"]
    auth = {"type": "m.login.password", "session": challenge.body["session"],
            "identifier": {"type": "m.id.user", "user": alice.user_id}}
    wrong = alice.post(SIGNING_UPLOAD, {**body, "auth": {**auth, "password": "wrong"}})
    assert wrong.status == 401 and wrong.errcode == "M_FORBIDDEN"
    right = alice.post(SIGNING_UPLOAD, {**body, "auth": {**auth, "password": PASSWORD}})
    assert right.status == 200, right
    assert query(alice, alice.user_id or "")["master_keys"][alice.user_id]["keys"] == {
        f"ed25519:{new_master.public}": new_master.public}


def test_bad_cross_signing_uploads(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    user_id = alice.user_id or ""
    master, other = Ed25519(), Ed25519()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"self_signing_key": cross_signing_key(user_id, "self_signing", other, master)}, "M_MISSING_PARAM"),
        ({"master_key": cross_signing_key("@else:test.local", "master", master)}, "M_INVALID_PARAM"),
        ({"master_key": cross_signing_key(user_id, "self_signing", master)}, "M_INVALID_PARAM"),
        ({"master_key": {"user_id": user_id, "usage": ["master"], "keys": {"ed25519:x": "y"}}}, "M_BAD_JSON"),
        ({"master_key": cross_signing_key(user_id, "master", master),
          "self_signing_key": cross_signing_key(user_id, "self_signing", other, other)}, "M_INVALID_SIGNATURE"),
        ({"master_key": "nope"}, "M_BAD_JSON"),
    ]
    for body, errcode in cases:
        response = alice.post(SIGNING_UPLOAD, body)
        assert (response.status, response.errcode) == (400, errcode), (body, response)
    assert query(alice, user_id)["master_keys"] == {}


def test_signing_own_device_and_another_users_master_key(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    carol = register_user(server.base_url)
    alice_device = setup_device(alice)
    _, alice_ssk, alice_usk = bootstrap(alice)
    bob_master, _, _ = bootstrap(bob)
    a_id, b_id = alice.user_id or "", bob.user_id or ""

    # Alice signs her device with her self-signing key.
    device = query(alice, a_id)["device_keys"][a_id][alice.device_id]
    device.pop("unsigned")
    signed_device = alice_ssk.sign(device, a_id, f"ed25519:{alice_ssk.public}")
    # ... and Bob's master key with her user-signing key.
    bob_master_key = query(alice, b_id)["master_keys"][b_id]
    signed_bob = alice_usk.sign(bob_master_key, a_id, f"ed25519:{alice_usk.public}")
    # ... and her master key with her device key.
    alice_master_key = query(alice, a_id)["master_keys"][a_id]
    master_pub = next(iter(alice_master_key["keys"].values()))
    signed_master = alice_device.sign(alice_master_key, a_id, f"ed25519:{alice.device_id}")
    response = alice.post(SIGNATURES_UPLOAD, {
        a_id: {alice.device_id: signed_device, master_pub: signed_master},
        b_id: {bob_master.public: signed_bob},
    })
    assert response.status == 200, response
    assert response.body["failures"] == {}

    # Everyone sees Alice's self-signatures; only Alice sees her signature on Bob.
    for viewer in (alice, carol):
        seen = query(viewer, a_id)
        assert f"ed25519:{alice_ssk.public}" in seen["device_keys"][a_id][alice.device_id]["signatures"][a_id]
        assert f"ed25519:{alice.device_id}" in seen["master_keys"][a_id]["signatures"][a_id]
    assert a_id in query(alice, b_id)["master_keys"][b_id]["signatures"]
    assert a_id not in query(carol, b_id)["master_keys"][b_id].get("signatures", {})


def test_bad_signatures_are_reported_per_key(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    setup_device(alice)
    _, alice_ssk, _ = bootstrap(alice)
    bob_master, _, _ = bootstrap(bob)
    a_id, b_id = alice.user_id or "", bob.user_id or ""
    device = query(alice, a_id)["device_keys"][a_id][alice.device_id]
    device.pop("unsigned")
    forged = Ed25519().sign(device, a_id, f"ed25519:{alice_ssk.public}")
    response = alice.post(SIGNATURES_UPLOAD, {
        a_id: {alice.device_id: forged, "UNKNOWN": device},
        b_id: {"not-the-master": forged, bob_master.public: {}},
    })
    assert response.status == 200, response
    failures = response.body["failures"]
    assert failures[a_id][alice.device_id]["errcode"] == "M_INVALID_SIGNATURE"
    assert failures[a_id]["UNKNOWN"]["errcode"] == "M_NOT_FOUND"
    assert failures[b_id]["not-the-master"]["errcode"] == "M_NOT_FOUND"
    assert failures[b_id][bob_master.public]["errcode"] == "M_BAD_JSON"
    assert alice.post(SIGNATURES_UPLOAD, {"nope": {}}).errcode == "M_INVALID_PARAM"
    assert alice.post(SIGNATURES_UPLOAD, {a_id: []}).errcode == "M_BAD_JSON"
    assert a_id not in query(bob, b_id)["master_keys"][b_id].get("signatures", {})
