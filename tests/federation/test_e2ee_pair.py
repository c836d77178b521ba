"""E2EE between two Vignette servers (issue 15): real clients (matrix-nio with vodozemac on one
server, mautrix with python-olm on the other) in an encrypted room decrypt each other's
messages both ways, see each other's new devices through device_lists.changed and reach them;
to-device messages sent while the receiving server is down arrive exactly once after it comes
back, also when both restart; and no plaintext is ever in either server's responses or rows."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.federation.e2ee_conversation import conversation
from tests.support.accounts import logged_in, with_password_uia
from tests.support.client import q, register_user
from tests.support.e2ee import database_text, setup_device
from tests.support.fed_pair import Pair
from tests.support.rooms import create_room, new_user
from tests.support.sync import sync, sync_until

PASSWORD = "correct horse battery"
#: A server that was down is retried soon (the default waits ten minutes).
FAST_RETRY = {"federation": {"destination_min_retry_interval": "500ms", "destination_max_retry_interval": "2s"}}


PAIR_CONFIG = FAST_RETRY
PAIR_PREFIX = "e2ee"


def test_real_clients_talk_encrypted_across_servers(pair: Pair, tmp_path: Path) -> None:
    sent = asyncio.run(conversation(pair.a, pair.b, tmp_path))
    assert len(sent) == 5
    for server in (pair.a, pair.b):
        stored = database_text(server)
        assert "m.megolm.v1.aes-sha2" in stored
        for text in sent:
            assert text not in stored


def device_lists_changed(body: dict[str, Any]) -> list[str]:
    return body.get("device_lists", {}).get("changed", [])


def test_device_changes_on_one_server_reach_the_other_servers_sync(pair: Pair) -> None:
    alice = new_user(pair.a.base_url)
    bob = register_user(pair.b.base_url, password=PASSWORD)
    room_id = create_room(alice, preset="public_chat")
    joined = bob.post(f"/_matrix/client/v3/join/{q(room_id)}", {}, params={"server_name": pair.a.server_name})
    assert joined.status == 200, joined
    assert bob.user_id is not None and bob.device_id is not None

    def bob_devices() -> set[str]:
        response = alice.post("/_matrix/client/v3/keys/query", {"device_keys": {bob.user_id: []}})
        assert response.status == 200 and response.body["failures"] == {}, response
        return set(response.body["device_keys"][bob.user_id])

    def after(change: Any, expected: set[str]) -> None:
        """The change on B shows up in Alice's sync on A, and her query then sees it."""
        since = sync(alice)["next_batch"]
        change()
        sync_until(alice, since, lambda b: bob.user_id in device_lists_changed(b))
        for _ in range(20):
            if bob_devices() == expected:
                return
            since = sync_until(alice, since, lambda b: bob.user_id in device_lists_changed(b))[1]
        assert bob_devices() == expected

    after(lambda: setup_device(bob), {bob.device_id})
    second = logged_in(pair.b.base_url, bob.user_id.split(":")[0][1:])
    after(lambda: setup_device(second), {bob.device_id, second.device_id})
    third = logged_in(pair.b.base_url, bob.user_id.split(":")[0][1:])
    after(lambda: setup_device(third), {bob.device_id, second.device_id, third.device_id})

    def delete_second() -> None:
        response = with_password_uia(bob, "POST", "/_matrix/client/v3/delete_devices",
                                     {"devices": [second.device_id]})
        assert response.status == 200, response

    after(delete_second, {bob.device_id, third.device_id})


def test_to_device_waits_for_a_stopped_server_and_arrives_once(pair: Pair) -> None:
    alice = new_user(pair.a.base_url)
    bob = new_user(pair.b.base_url)
    assert bob.user_id is not None and bob.device_id is not None
    first_since = sync(bob)["next_batch"]

    def send(txn_id: str, tag: str) -> None:
        response = alice.put(f"/_matrix/client/v3/sendToDevice/m.test.ping/{txn_id}",
                             {"messages": {bob.user_id: {bob.device_id: {"tag": tag}}}})
        assert response.status == 200, response

    def wait_for_tags(since: str, expected: list[str]) -> str:
        seen: list[str] = []
        for _ in range(40):
            body = sync(bob, since, timeout=2000)
            since = body["next_batch"]
            seen += [e["content"]["tag"] for e in body.get("to_device", {}).get("events", [])
                     if e["type"] == "m.test.ping"]
            if seen == expected:
                break
        assert seen == expected
        # Nothing more comes (a duplicate would show up here).
        body = sync(bob, since, timeout=1000)
        assert [e for e in body.get("to_device", {}).get("events", []) if e["type"] == "m.test.ping"] == []
        return body["next_batch"]

    pair.b.stop()
    try:
        send("t1", "while B was down")
        send("t1", "while B was down")  # the client's retry of the same transaction
    finally:
        pair.b.start()
    since = wait_for_tags(first_since, ["while B was down"])

    pair.b.stop()
    try:
        send("t2", "before both restarted")
        pair.a.restart()
    finally:
        pair.b.start()
    wait_for_tags(since, ["before both restarted"])
