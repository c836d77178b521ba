"""Server-side key backup: versions, the which-copy-wins rule, etag and count, wrong versions."""

from __future__ import annotations

from typing import Any

from tests.support.client import Client, q, register_user
from tests.support.server import RunningServer

BASE = "/_matrix/client/v3/room_keys"
ROOM = "!room:test.local"
AUTH_DATA = {"public_key": "abcdefg", "signatures": {}}
ALGORITHM = "m.megolm_backup.v1.curve25519-aes-sha2"


def key(first: int, forwarded: int, verified: bool, marker: str) -> dict[str, Any]:
    return {"first_message_index": first, "forwarded_count": forwarded, "is_verified": verified,
            "session_data": {"ciphertext": marker, "ephemeral": "e", "mac": "m"}}


def new_version(client: Client) -> str:
    response = client.post(f"{BASE}/version", {"algorithm": ALGORITHM, "auth_data": AUTH_DATA})
    assert response.status == 200, response
    return response.body["version"]


def put_session(client: Client, version: str, session: str, body: dict[str, Any]) -> Any:
    return client.put(f"{BASE}/keys/{q(ROOM)}/{session}", body, params={"version": version})


def test_version_lifecycle(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    missing = alice.get(f"{BASE}/version")
    assert (missing.status, missing.errcode) == (404, "M_NOT_FOUND")
    first = new_version(alice)
    second = new_version(alice)
    assert int(second) > int(first)
    latest = alice.get(f"{BASE}/version").body
    assert latest == {"algorithm": ALGORITHM, "auth_data": AUTH_DATA, "count": 0, "etag": latest["etag"],
                      "version": second}
    assert alice.get(f"{BASE}/version/{first}").body["version"] == first
    updated = {"algorithm": ALGORITHM, "auth_data": {**AUTH_DATA, "extra": 1}, "version": second}
    assert alice.put(f"{BASE}/version/{second}", updated).status == 200
    assert alice.get(f"{BASE}/version/{second}").body["auth_data"]["extra"] == 1
    assert alice.put(f"{BASE}/version/{second}", {**updated, "version": first}).errcode == "M_INVALID_PARAM"
    assert alice.put(f"{BASE}/version/{second}", {**updated, "algorithm": "other"}).errcode == "M_INVALID_PARAM"
    assert alice.delete(f"{BASE}/version/{second}").status == 200
    assert alice.get(f"{BASE}/version/{second}").status == 404
    assert alice.get(f"{BASE}/version").body["version"] == first
    assert alice.get(f"{BASE}/version/nonsense").status == 404
    # Another user sees none of it.
    assert register_user(server.base_url).get(f"{BASE}/version/{first}").status == 404


def test_which_copy_is_kept(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    version = new_version(alice)
    first = put_session(alice, version, "s1", key(5, 1, False, "a"))
    assert first.status == 200 and first.body["count"] == 1
    etag = first.body["etag"]
    steps = [
        (key(3, 5, False, "b"), "b"),   # lower first_message_index wins
        (key(4, 0, False, "c"), "b"),   # higher index loses even with a lower forwarded_count
        (key(3, 2, False, "d"), "d"),   # same index, lower forwarded_count wins
        (key(9, 9, True, "e"), "e"),    # verified beats unverified, whatever the numbers
        (key(0, 0, False, "f"), "e"),   # unverified never replaces verified
        (key(1, 0, True, "g"), "g"),
    ]
    for body, kept in steps:
        response = put_session(alice, version, "s1", body)
        assert response.status == 200, response
        got = alice.get(f"{BASE}/keys/{q(ROOM)}/s1", params={"version": version}).body
        assert got["session_data"]["ciphertext"] == kept, body
    assert alice.get(f"{BASE}/version").body["etag"] != etag


def test_bulk_upload_read_and_delete(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    version = new_version(alice)
    body = {"rooms": {ROOM: {"sessions": {"s1": key(0, 0, False, "x"), "s2": key(0, 0, False, "y")}},
                      "!other:test.local": {"sessions": {"s3": key(0, 0, True, "z")}}}}
    response = alice.put(f"{BASE}/keys", body, params={"version": version})
    assert response.body["count"] == 3
    everything = alice.get(f"{BASE}/keys", params={"version": version}).body
    assert set(everything["rooms"]) == {ROOM, "!other:test.local"}
    room = alice.get(f"{BASE}/keys/{q(ROOM)}", params={"version": version}).body
    assert set(room["sessions"]) == {"s1", "s2"}
    assert alice.get(f"{BASE}/keys/{q('!none:test.local')}", params={"version": version}).body == {"sessions": {}}
    missing = alice.get(f"{BASE}/keys/{q(ROOM)}/nope", params={"version": version})
    assert (missing.status, missing.errcode) == (404, "M_NOT_FOUND")
    deleted = alice.delete(f"{BASE}/keys/{q(ROOM)}/s1", params={"version": version})
    assert deleted.body["count"] == 2
    assert alice.delete(f"{BASE}/keys/{q(ROOM)}", params={"version": version}).body["count"] == 1
    assert alice.delete(f"{BASE}/keys", params={"version": version}).body["count"] == 0
    room_body = {"sessions": {"s9": key(0, 0, False, "w")}}
    assert alice.put(f"{BASE}/keys/{q(ROOM)}", room_body, params={"version": version}).body["count"] == 1


def test_wrong_version_and_bad_input(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    no_backup = put_session(alice, "1", "s", key(0, 0, False, "x"))
    assert (no_backup.status, no_backup.errcode) == (404, "M_NOT_FOUND")
    old = new_version(alice)
    current = new_version(alice)
    wrong = put_session(alice, old, "s", key(0, 0, False, "x"))
    assert (wrong.status, wrong.errcode) == (403, "M_WRONG_ROOM_KEYS_VERSION")
    assert wrong.body["current_version"] == current
    assert put_session(alice, "abc", "s", key(0, 0, False, "x")).errcode == "M_WRONG_ROOM_KEYS_VERSION"
    bad_keys = [
        {"first_message_index": -1, "forwarded_count": 0, "is_verified": False, "session_data": {}},
        {"first_message_index": 0, "forwarded_count": "1", "is_verified": False, "session_data": {}},
        {"first_message_index": 0, "forwarded_count": 0, "is_verified": 1, "session_data": {}},
        {"first_message_index": 0, "forwarded_count": 0, "is_verified": False, "session_data": "x"},
    ]
    for bad in bad_keys:
        assert put_session(alice, current, "s", bad).errcode == "M_BAD_JSON", bad
    assert alice.put(f"{BASE}/keys", {"rooms": []}, params={"version": current}).errcode == "M_BAD_JSON"
    assert alice.put(f"{BASE}/keys", {"rooms": {}}).errcode == "M_MISSING_PARAM"
    assert alice.post(f"{BASE}/version", {"algorithm": ALGORITHM}).errcode == "M_BAD_JSON"
    assert alice.post(f"{BASE}/version", {"auth_data": {}}).errcode == "M_BAD_JSON"
    assert alice.get(f"{BASE}/keys", params={"version": "999"}).status == 404
