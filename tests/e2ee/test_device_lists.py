"""device_lists in /sync and /keys/changes: changes, and the transitions on join and leave."""

from __future__ import annotations

from typing import Any

from tests.support.client import Client, register_user
from tests.support.e2ee import Ed25519, database_rows, one_time_keys, setup_device, upload_keys
from tests.support.server import RunningServer
from tests.support.sync import create_room, invite, join, leave, shared_room, sync

CHANGES = "/_matrix/client/v3/keys/changes"


def device_lists(body: dict[str, Any]) -> tuple[list[str], list[str]]:
    lists = body.get("device_lists", {})
    return lists.get("changed", []), lists.get("left", [])


def assert_device_gone(server: RunningServer, owner: Client, asker: Client) -> None:
    """``owner``'s device has no keys left for ``asker`` to query or claim, and no to-device inbox."""
    query = asker.post("/_matrix/client/v3/keys/query", {"device_keys": {owner.user_id: []}})
    assert query.body["device_keys"][owner.user_id] == {}
    claim = asker.post("/_matrix/client/v3/keys/claim",
                       {"one_time_keys": {owner.user_id: {owner.device_id: "signed_curve25519"}}})
    assert claim.body["one_time_keys"] == {}
    assert database_rows(server, "SELECT COUNT(*) FROM device_inbox WHERE user_id = ?", owner.user_id) == [(0,)]


def test_new_device_keys_show_up_for_room_members_only(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    stranger = register_user(server.base_url)
    shared_room(alice, bob)
    bob_token = sync(bob)["next_batch"]
    stranger_token = sync(stranger)["next_batch"]
    setup_device(alice)
    changed, left = device_lists(sync(bob, since=bob_token))
    assert alice.user_id in changed and left == []
    assert alice.user_id not in device_lists(sync(stranger, since=stranger_token))[0]
    response = bob.get(CHANGES, params={"from": bob_token, "to": sync(bob)["next_batch"]})
    assert response.status == 200, response
    assert alice.user_id in response.body["changed"]


def test_join_and_leave_transitions(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    carol = register_user(server.base_url)
    room_id = create_room(alice)
    setup_device(carol)  # long before she shares a room with Alice
    token = sync(alice)["next_batch"]
    invite(alice, room_id, str(carol.user_id))
    join(carol, room_id)
    after_join = sync(alice, since=token)
    changed, left = device_lists(after_join)
    assert carol.user_id in changed and carol.user_id not in left
    # Carol's own sync also lists Alice once she joins Alice's room.
    leave(carol, room_id)
    after_leave = sync(alice, since=after_join["next_batch"])
    changed, left = device_lists(after_leave)
    assert carol.user_id in left and carol.user_id not in changed
    keys_changes = alice.get(CHANGES, params={"from": after_join["next_batch"],
                                              "to": after_leave["next_batch"]}).body
    assert carol.user_id in keys_changes["left"]


def test_joining_a_room_lists_its_members_for_the_joiner(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    dave = register_user(server.base_url)
    room_id = create_room(alice)
    token = sync(dave)["next_batch"]
    invite(alice, room_id, str(dave.user_id))
    join(dave, room_id)
    changed, _ = device_lists(sync(dave, since=token))
    assert alice.user_id in changed


def test_key_counts_and_fallback_types_in_sync(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    identity: Ed25519 = setup_device(alice, otk_count=3)
    fallback = one_time_keys(alice, identity, 1, prefix="fb")
    upload_keys(alice, fallback_keys=fallback)
    body = sync(alice)
    assert body["device_one_time_keys_count"]["signed_curve25519"] == 3
    assert body["device_unused_fallback_key_types"] == ["signed_curve25519"]
    for _ in range(4):
        bob.post("/_matrix/client/v3/keys/claim",
                 {"one_time_keys": {alice.user_id: {alice.device_id: "signed_curve25519"}}})
    body = sync(alice, since=body["next_batch"])
    assert body["device_one_time_keys_count"]["signed_curve25519"] == 0
    assert body["device_unused_fallback_key_types"] == []


def test_deleting_a_device_removes_its_keys_and_is_a_change(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    shared_room(alice, bob)
    setup_device(alice, otk_count=2)
    token = sync(bob)["next_batch"]
    logout = alice.post("/_matrix/client/v3/logout", {})
    assert logout.status == 200
    changed, _ = device_lists(sync(bob, since=token))
    assert alice.user_id in changed
    assert_device_gone(server, alice, bob)


def test_keys_changes_bad_tokens(server: RunningServer) -> None:
    alice: Client = register_user(server.base_url)
    assert alice.get(CHANGES, params={"from": "garbage!", "to": "x"}).errcode == "M_INVALID_PARAM"
    assert alice.get(CHANGES, params={"from": "events.1"}).errcode == "M_MISSING_PARAM"


def test_deactivating_removes_every_devices_keys_and_inbox(server: RunningServer) -> None:
    alice = register_user(server.base_url, password="correct horse battery")
    bob = register_user(server.base_url)
    setup_device(alice, otk_count=2)
    bob.put("/_matrix/client/v3/sendToDevice/m.test/t1",
            {"messages": {alice.user_id: {alice.device_id: {"secret": 1}}}})
    auth = {"type": "m.login.password", "password": "correct horse battery",
            "identifier": {"type": "m.id.user", "user": alice.user_id}}
    challenge = alice.post("/_matrix/client/v3/account/deactivate", {})
    response = alice.post("/_matrix/client/v3/account/deactivate",
                          {"auth": {**auth, "session": challenge.body.get("session")}})
    assert response.status == 200, response
    assert_device_gone(server, alice, bob)
