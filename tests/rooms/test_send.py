"""Sending events: transaction-ID idempotency, state changes, power levels, redaction, limits."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.client import Client, q, register_user
from tests.support.rooms import (
    V3,
    create_room,
    get_state,
    join,
    messages,
    new_user,
    put_state,
    send_message,
)
from tests.support.server import RunningServer


@pytest.fixture
def pair(server: RunningServer) -> tuple[Client, Client, str]:
    alice, bob = new_user(server.base_url), new_user(server.base_url)
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    return alice, bob, room_id


def count_bodies(client: Client, room_id: str, body: str) -> int:
    chunk = messages(client, room_id, dir="b", limit=100)["chunk"]
    return sum(1 for e in chunk if e["content"].get("body") == body)


def test_same_txn_id_returns_the_same_event(pair: tuple[Client, Client, str]) -> None:
    alice, _, room_id = pair
    first = send_message(alice, room_id, "once", txn_id="fixed")
    again = send_message(alice, room_id, "once", txn_id="fixed")
    assert first == again
    assert count_bodies(alice, room_id, "once") == 1
    other = send_message(alice, room_id, "once", txn_id="different")
    assert other != first


def test_txn_ids_are_per_device(server: RunningServer) -> None:
    alice = register_user(server.base_url, password="pw-for-two-devices")
    room_id = create_room(alice)
    login = Client(server.base_url).post(f"{V3}/login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": alice.user_id},
        "password": "pw-for-two-devices"})
    assert login.status == 200, login
    second_device = Client(server.base_url, access_token=login.body["access_token"],
                           user_id=alice.user_id, device_id=login.body["device_id"])
    first = send_message(alice, room_id, "same txn", txn_id="shared-txn")
    second = send_message(second_device, room_id, "same txn", txn_id="shared-txn")
    assert first != second
    assert send_message(second_device, room_id, "same txn", txn_id="shared-txn") == second


def test_concurrent_retries_do_not_duplicate(pair: tuple[Client, Client, str]) -> None:
    alice, _, room_id = pair
    path = f"{V3}/rooms/{q(room_id)}/send/m.room.message/racing"
    body = {"msgtype": "m.text", "body": "raced"}
    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda _: alice.put(path, body), range(6)))
    assert {r.status for r in responses} == {200}
    assert len({r.body["event_id"] for r in responses}) == 1
    assert count_bodies(alice, room_id, "raced") == 1


def test_txn_id_survives_a_restart(server: RunningServer, pair: tuple[Client, Client, str]) -> None:
    alice, _, room_id = pair
    first = send_message(alice, room_id, "before restart", txn_id="persisted")
    server.restart()
    assert send_message(alice, room_id, "before restart", txn_id="persisted") == first
    assert count_bodies(alice, room_id, "before restart") == 1


def test_transaction_id_is_shown_only_to_the_sender(pair: tuple[Client, Client, str]) -> None:
    alice, bob, room_id = pair
    event_id = send_message(alice, room_id, "mine", txn_id="shown")
    mine = alice.get(f"{V3}/rooms/{q(room_id)}/event/{q(event_id)}").body
    theirs = bob.get(f"{V3}/rooms/{q(room_id)}/event/{q(event_id)}").body
    assert mine["unsigned"]["transaction_id"] == "shown"
    assert "transaction_id" not in theirs["unsigned"]


def test_sending_to_a_room_you_are_not_in(server: RunningServer, pair: tuple[Client, Client, str]) -> None:
    _, _, room_id = pair
    outsider = new_user(server.base_url)
    response = outsider.put(f"{V3}/rooms/{q(room_id)}/send/m.room.message/t1", {"body": "hi"})
    assert (response.status, response.errcode) == (403, "M_FORBIDDEN")
    unknown = outsider.put(f"{V3}/rooms/{q('!unknown:test.local')}/send/m.room.message/t2", {})
    assert (unknown.status, unknown.errcode) == (403, "M_FORBIDDEN")


def test_too_large_event(pair: tuple[Client, Client, str]) -> None:
    alice, _, room_id = pair
    response = alice.put(f"{V3}/rooms/{q(room_id)}/send/m.room.message/big", {"body": "x" * 70_000})
    assert (response.status, response.errcode) == (413, "M_TOO_LARGE")


def test_state_roundtrip_and_power_levels(pair: tuple[Client, Client, str]) -> None:
    alice, bob, room_id = pair
    assert put_state(alice, room_id, "m.room.name", {"name": "First"}).status == 200
    assert get_state(bob, room_id, "m.room.name").body == {"name": "First"}
    refused = put_state(bob, room_id, "m.room.name", {"name": "Bob's"})
    assert (refused.status, refused.errcode) == (403, "M_FORBIDDEN")
    levels = get_state(alice, room_id, "m.room.power_levels").body
    levels["users"][bob.user_id] = 50
    assert put_state(alice, room_id, "m.room.power_levels", levels).status == 200
    assert put_state(bob, room_id, "m.room.name", {"name": "Bob's"}).status == 200
    # bob (50) cannot raise himself or demote alice (100).
    levels["users"][bob.user_id] = 100
    assert put_state(bob, room_id, "m.room.power_levels", levels).status == 403
    levels["users"][bob.user_id] = 50
    levels["users"][alice.user_id] = 0
    assert put_state(bob, room_id, "m.room.power_levels", levels).status == 403
    full = bob.get(f"{V3}/rooms/{q(room_id)}/state/m.room.name", params={"format": "event"}).body
    assert full["unsigned"]["prev_content"] == {"name": "First"}


def test_state_with_empty_and_slashed_keys(pair: tuple[Client, Client, str]) -> None:
    alice, _, room_id = pair
    assert alice.put(f"{V3}/rooms/{q(room_id)}/state/org.example.thing", {"v": 1}).status == 200
    assert alice.get(f"{V3}/rooms/{q(room_id)}/state/org.example.thing/").body == {"v": 1}
    assert put_state(alice, room_id, "org.example.thing", {"v": 2}, state_key="a/b").status == 200
    assert get_state(alice, room_id, "org.example.thing", "a/b").body == {"v": 2}
    missing = get_state(alice, room_id, "org.example.absent")
    assert (missing.status, missing.errcode) == (404, "M_NOT_FOUND")


@pytest.mark.parametrize("event_type,content", [
    ("m.room.power_levels", {"users": {"@a:test.local": "100"}}),
    ("m.room.power_levels", {"ban": 1.5}),
    ("m.room.power_levels", {"users": {"not-a-user": 1}}),
    ("m.room.power_levels", {"events": []}),
    ("m.room.join_rules", {"join_rule": 1}),
    ("m.room.join_rules", {"join_rule": "public", "allow": "x"}),
    ("m.room.history_visibility", {"history_visibility": "sometimes"}),
    ("m.room.member", {"membership": "dancing"}),
])
def test_invalid_state_content_is_bad_json(pair: tuple[Client, Client, str], event_type: str,
                                           content: dict) -> None:
    alice, _, room_id = pair
    response = put_state(alice, room_id, event_type, content)
    assert (response.status, response.errcode) == (400, "M_BAD_JSON"), response


def test_bad_canonical_alias_content(pair: tuple[Client, Client, str]) -> None:
    alice, _, room_id = pair
    response = put_state(alice, room_id, "m.room.canonical_alias", {"alias": "nope"})
    assert (response.status, response.errcode) == (400, "M_BAD_ALIAS")


def test_redaction_as_seen_by_other_members(pair: tuple[Client, Client, str]) -> None:
    alice, bob, room_id = pair
    event_id = send_message(alice, room_id, "secret", extra_key="gone")
    response = alice.put(f"{V3}/rooms/{q(room_id)}/redact/{q(event_id)}/r1", {"reason": "oops"})
    assert response.status == 200, response
    redaction_id = response.body["event_id"]
    seen = bob.get(f"{V3}/rooms/{q(room_id)}/event/{q(event_id)}").body
    assert seen["content"] == {}
    because = seen["unsigned"]["redacted_because"]
    assert because["event_id"] == redaction_id
    assert because["content"]["reason"] == "oops"
    assert because["redacts"] == event_id
    in_history = [e for e in messages(bob, room_id, dir="b")["chunk"] if e["event_id"] == event_id]
    assert in_history[0]["content"] == {}
    retry = alice.put(f"{V3}/rooms/{q(room_id)}/redact/{q(event_id)}/r1", {"reason": "oops"})
    assert retry.body["event_id"] == redaction_id


def test_redacting_others_needs_power(pair: tuple[Client, Client, str]) -> None:
    alice, bob, room_id = pair
    event_id = send_message(alice, room_id, "alice's")
    refused = bob.put(f"{V3}/rooms/{q(room_id)}/redact/{q(event_id)}/r2", {})
    assert (refused.status, refused.errcode) == (403, "M_FORBIDDEN")
    own = send_message(bob, room_id, "bob's")
    assert bob.put(f"{V3}/rooms/{q(room_id)}/redact/{q(own)}/r3", {}).status == 200
    missing = alice.put(f"{V3}/rooms/{q(room_id)}/redact/{q('$missing')}/r4", {})
    assert missing.status in (400, 404)


@pytest.mark.parametrize("version", ["1", "5", "9", "11"])
def test_redaction_algorithm_per_room_version(server: RunningServer, version: str) -> None:
    alice = new_user(server.base_url)
    room_id = create_room(alice, room_version=version)
    assert put_state(alice, room_id, "m.room.join_rules", {"join_rule": "public", "other": 1}).status == 200
    event_id = get_state(alice, room_id, "m.room.join_rules").body and alice.get(
        f"{V3}/rooms/{q(room_id)}/state/m.room.join_rules", params={"format": "event"}).body["event_id"]
    assert alice.put(f"{V3}/rooms/{q(room_id)}/redact/{q(event_id)}/rv", {}).status == 200
    seen = alice.get(f"{V3}/rooms/{q(room_id)}/event/{q(event_id)}").body
    assert seen["content"] == {"join_rule": "public"}


@pytest.mark.parametrize("raw", [b"not json", b"[1]", b'"text"'])
def test_send_bodies_must_be_json_objects(pair: tuple[Client, Client, str], raw: bytes) -> None:
    alice, _, room_id = pair
    response = alice.request("PUT", f"{V3}/rooms/{q(room_id)}/send/m.room.message/raw", raw=raw)
    assert (response.status, response.errcode) == (400, "M_NOT_JSON")
