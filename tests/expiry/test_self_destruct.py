"""Self-destructing messages: once the time is up the event is gone from every read path
and its content from every row of the database; org.matrix.self_destruct starts counting
only when every other joined member has read the event.

Waits are bounded polls for what the server must do eventually; the one fixed sleep shows
that an event is *not* expunged before everyone has read it (it waits past its delay).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from tests.expiry.conftest import ExpiryServer
from tests.support.calls import wait_for
from tests.support.client import Client
from tests.support.expiry import context, get_event, receipt, relations, rows_containing, send
from tests.support.rooms import create_room, invite, join, messages, new_user, send_message
from tests.support.sync import sync


def now_ms() -> int:
    return int(time.time() * 1000)


def members(server: ExpiryServer, count: int) -> tuple[list[Client], str]:
    users = [new_user(server.base_url) for _ in range(count)]
    room_id = create_room(users[0])
    for user in users[1:]:
        invite(users[0], room_id, str(user.user_id))
        join(user, room_id)
    return users, room_id


def sent(response: Any) -> str:
    assert response.status == 200, response
    return response.body["event_id"]


def is_expunged(client: Client, room_id: str, event_id: str) -> bool:
    response = get_event(client, room_id, event_id)
    assert response.status == 200, response
    return "redacted_because" in response.body["unsigned"]


def everything_seen(client: Client, room_id: str, event_ids: list[str]) -> str:
    """Every read path's view of the room, as one string to search."""
    views: list[Any] = [sync(client, sync_filter={"room": {"timeline": {"limit": 50}}})]
    views.append(messages(client, room_id, dir="b", limit="50"))
    views.append(messages(client, room_id, dir="f", limit="50"))
    for event_id in event_ids:
        views += [get_event(client, room_id, event_id).body, context(client, room_id, event_id).body,
                  relations(client, room_id, event_id).body]
    views.append(client.get(f"/_matrix/client/v1/rooms/{room_id}/threads").body)
    return repr(views)


def test_self_destruct_after_expunges_everywhere(expiry_server: ExpiryServer) -> None:
    (alice, bob), room_id = members(expiry_server, 2)
    secret, reaction_key, cipher, edited = (f"secret-{secrets.token_hex(6)}" for _ in range(4))
    root = send_message(alice, room_id, "the thread root")
    due = now_ms() + 3000
    reply = sent(send(alice, room_id, {
        "msgtype": "m.text", "body": secret, "org.matrix.self_destruct_after": due,
        "m.relates_to": {"rel_type": "m.thread", "event_id": root}}))
    reaction = sent(send(alice, room_id, {
        "org.matrix.self_destruct_after": due,
        "m.relates_to": {"rel_type": "m.annotation", "event_id": root, "key": reaction_key}}, "m.reaction"))
    encrypted = sent(send(alice, room_id, {
        "algorithm": "m.megolm.v1.aes-sha2", "ciphertext": cipher, "sender_key": "k", "device_id": "D",
        "session_id": "s", "org.matrix.self_destruct_after": due}, "m.room.encrypted"))
    # The sender's edit carries the new text in m.new_content: it goes with the message.
    edit = sent(send(alice, room_id, {"msgtype": "m.text", "body": f"* {edited}",
                                      "m.new_content": {"msgtype": "m.text", "body": edited},
                                      "m.relates_to": {"rel_type": "m.replace", "event_id": reply}}))
    later = send_message(bob, room_id, "a reply that stays")
    ids = [root, reply, reaction, encrypted, edit, later]

    # Before its time everyone sees it, and the probes find it in the database.
    assert get_event(bob, room_id, reply).body["content"]["body"] == secret
    seen = everything_seen(bob, room_id, ids)
    assert secret in seen and reaction_key in seen and cipher in seen and edited in seen
    for needle in (secret, reaction_key, cipher, edited):
        assert rows_containing(expiry_server.database, needle)

    for event_id in (reply, reaction, encrypted, edit):
        wait_for(lambda e=event_id: is_expunged(bob, room_id, e), "the event to be expunged")
    assert now_ms() >= due
    expunged = get_event(alice, room_id, reply).body
    assert expunged["content"] == {} and expunged["sender"] == alice.user_id
    assert expunged["unsigned"]["redacted_because"]["redacts"] == reply
    for client in (alice, bob):
        seen = everything_seen(client, room_id, ids)
        for needle in (secret, reaction_key, cipher, edited, "org.matrix.self_destruct_after"):
            assert needle not in seen
    for needle in (secret, reaction_key, cipher, edited):
        assert rows_containing(expiry_server.database, needle) == []
    # What was not asked to self-destruct is untouched.
    assert get_event(bob, room_id, later).body["content"]["body"] == "a reply that stays"
    assert get_event(bob, room_id, root).body["content"]["body"] == "the thread root"


def test_self_destruct_waits_until_everyone_has_read(expiry_server: ExpiryServer) -> None:
    (alice, bob, carol), room_id = members(expiry_server, 3)
    secret = f"read-then-gone-{secrets.token_hex(6)}"
    event_id = sent(send(alice, room_id, {"msgtype": "m.text", "body": secret, "org.matrix.self_destruct": 300}))
    after = send_message(alice, room_id, "after it")
    receipt(bob, room_id, event_id)
    receipt(alice, room_id, after)  # the sender's own receipt counts for nothing
    time.sleep(1.5)  # well past its 300 ms: carol has not read it, so it stays
    assert not is_expunged(carol, room_id, event_id)
    assert get_event(carol, room_id, event_id).body["content"]["body"] == secret
    assert rows_containing(expiry_server.database, secret)

    receipt(carol, room_id, after, "m.read.private")  # a private receipt, on a later event
    wait_for(lambda: is_expunged(bob, room_id, event_id), "the read event to be expunged")
    assert secret not in everything_seen(carol, room_id, [event_id, after])
    assert rows_containing(expiry_server.database, secret) == []


def test_a_member_who_leaves_no_longer_holds_it_back(expiry_server: ExpiryServer) -> None:
    (alice, bob, carol), room_id = members(expiry_server, 3)
    secret = f"leaver-{secrets.token_hex(6)}"
    event_id = sent(send(alice, room_id, {"msgtype": "m.text", "body": secret, "org.matrix.self_destruct": 0}))
    receipt(bob, room_id, event_id)
    time.sleep(0.5)
    assert not is_expunged(bob, room_id, event_id)
    carol.post(f"/_matrix/client/v3/rooms/{room_id}/leave", {})
    wait_for(lambda: is_expunged(bob, room_id, event_id), "the event to be expunged once carol left")
    assert rows_containing(expiry_server.database, secret) == []


def test_alone_in_the_room_the_timer_starts_at_once(expiry_server: ExpiryServer) -> None:
    (alice,), room_id = members(expiry_server, 1)
    secret = f"alone-{secrets.token_hex(6)}"
    event_id = sent(send(alice, room_id, {"msgtype": "m.text", "body": secret, "org.matrix.self_destruct": 200}))
    wait_for(lambda: is_expunged(alice, room_id, event_id), "the event to be expunged")
    assert rows_containing(expiry_server.database, secret) == []


def test_a_retry_after_expiry_returns_the_same_event(expiry_server: ExpiryServer) -> None:
    (alice,), room_id = members(expiry_server, 1)
    content = {"msgtype": "m.text", "body": "once", "org.matrix.self_destruct_after": now_ms() + 1000}
    event_id = sent(send(alice, room_id, content, txn_id="retried-txn"))
    wait_for(lambda: is_expunged(alice, room_id, event_id), "the event to be expunged")
    assert sent(send(alice, room_id, content, txn_id="retried-txn")) == event_id
    refused = send(alice, room_id, content, txn_id="a-new-txn")
    assert (refused.status, refused.errcode) == (400, "M_INVALID_PARAM")
