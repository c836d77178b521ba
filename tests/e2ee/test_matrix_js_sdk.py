"""matrix-js-sdk itself, with its Rust crypto, against our server (issue 11).

The SDK under Element Web and many bots, from the npm registry at the versions
tests/js/package-lock.json pins, on this machine's Node. tests/js/roundtrip.mjs
registers two clients, starts their crypto (in-memory store) and syncing, and
goes through an m.megolm.v1.aes-sha2 room both ways; the script reports what
each side decrypted, and this test checks it against what was sent, and that
the server only ever saw ciphertext.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.e2ee import database_text
from tests.support.nodejs import declared_version, run_script
from tests.support.server import RunningServer

MEGOLM = "m.megolm.v1.aes-sha2"
#: Guards only, so that a broken server fails the test instead of hanging it.
SCRIPT_TIMEOUT_S = 90
PROCESS_TIMEOUT_S = SCRIPT_TIMEOUT_S + 30
#: The only refusals the SDK should meet, each right by the spec. Anything else (a 5xx, an
#: M_UNRECOGNIZED for an endpoint it needs, as /pushrules/ was) fails the test.
EXPECTED_REFUSALS = {
    # No key backup was ever created: the spec's 404 M_NOT_FOUND.
    ("GET", "/_matrix/client/v3/room_keys/version", 404, "M_NOT_FOUND"),
}


def run_roundtrip(server: RunningServer, tmp_path: Path) -> dict[str, Any]:
    status, result, output = run_script("roundtrip.mjs", server.base_url, "--timeout", str(SCRIPT_TIMEOUT_S),
                                        timeout_s=PROCESS_TIMEOUT_S, log_path=tmp_path / "roundtrip.log")
    detail = f"script exited {status}, result {result}\n{output[-6000:]}\n--- server\n{server.output()}"
    assert status == 0 and result is not None and result["ok"] is True, detail
    return result


def test_matrix_js_sdk_encrypted_round_trip(server: RunningServer, tmp_path: Path) -> None:
    result = run_roundtrip(server, tmp_path)

    # The versions that ran are the ones pinned, on a Node the SDK's `engines` allows.
    assert result["matrix_js_sdk"] == declared_version("matrix-js-sdk")
    assert result["matrix_sdk_crypto_wasm"] == declared_version("@matrix-org/matrix-sdk-crypto-wasm")
    assert int(result["node"].split(".")[0]) >= 20

    users = result["users"]
    assert set(users) == {"alice", "bob"}
    for user in users.values():
        assert user["user_id"].endswith(f":{server.server_name}")
        assert "SYNCING" in user["sync_states"] and "ERROR" not in user["sync_states"], user
        assert user["room_encrypted"] is True
        assert user["room_algorithm"] == MEGOLM

    messages = result["messages"]
    assert [(m["from"], m["to"]) for m in messages] == [("alice", "bob"), ("bob", "alice")]
    for message in messages:
        sender = users[message["from"]]
        assert message["received"] == message["sent"], message
        assert message["received_sender"] == sender["user_id"]
        assert message["wire_type"] == "m.room.encrypted"
        assert message["wire_algorithm"] == MEGOLM
        assert message["sender_device"] == sender["device_id"]
        assert message["server_type"] == "m.room.encrypted"
        assert message["server_algorithm"] == MEGOLM
        assert message["server_has_plaintext"] is False

    refused = {(e["method"], e["path"], e["status"], e["errcode"]) for e in result["http_errors"]}
    assert refused <= EXPECTED_REFUSALS, result["http_errors"]

    stored = database_text(server)
    assert result["room_id"] in stored  # the grep does see the room's rows
    for message in messages:
        assert message["sent"] not in stored
