"""The shared push row of an event and the members it does not apply to, seen from clients:
late joiners, senders, members whose rules differ, and many members counted at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.push.test_evaluation import notifications, receipt, send, set_rule, text, unread
from tests.support.client import Client, register_user
from tests.support.server import RunningServer
from tests.support.sync import invite, join, leave, shared_room


def messages(client: Client) -> list[str]:
    return [n["event"]["event_id"] for n in notifications(client)["notifications"]]


def test_a_late_joiner_counts_only_what_came_after_the_join(server: RunningServer) -> None:
    alice, bob, carol = (register_user(server.base_url) for _ in range(3))
    room_id = shared_room(alice, bob)
    first = send(alice, room_id, text("before carol"))
    invite(alice, room_id, str(carol.user_id))
    join(carol, room_id)
    after = send(alice, room_id, text("after carol"))
    assert unread(carol, room_id) == (1, 0)
    assert messages(carol) == [after]
    assert unread(bob, room_id) == (2, 0)
    assert messages(bob) == [after, first]


def test_a_rejoin_starts_counting_again(server: RunningServer) -> None:
    alice, bob, carol = (register_user(server.base_url) for _ in range(3))
    room_id = shared_room(alice, bob, carol)
    send(alice, room_id, text("one"))
    leave(carol, room_id)
    send(alice, room_id, text("while carol is away"))
    invite(alice, room_id, str(carol.user_id))
    join(carol, room_id)
    send(alice, room_id, text("two"))
    assert unread(carol, room_id) == (1, 0)
    assert unread(bob, room_id) == (3, 0)


def test_the_sender_does_not_count_their_own_messages(server: RunningServer) -> None:
    alice, bob, carol = (register_user(server.base_url) for _ in range(3))
    room_id = shared_room(alice, bob, carol)
    from_bob = send(bob, room_id, text("bob speaks"))
    from_carol = send(carol, room_id, text("carol speaks"))
    assert unread(bob, room_id) == (1, 0)
    assert unread(carol, room_id) == (1, 0)
    assert unread(alice, room_id) == (2, 0)
    assert messages(bob) == [from_carol]
    assert messages(carol) == [from_bob]


def test_members_who_differ_from_the_shared_outcome(server: RunningServer) -> None:
    alice, bob, carol, dave = (register_user(server.base_url) for _ in range(4))
    room_id = shared_room(alice, bob, carol, dave)
    set_rule(bob, "override/.m.rule.master/enabled", {"enabled": True})
    set_rule(dave, "content/loud", {"pattern": "cake", "actions": ["notify", {"set_tweak": "highlight"}]})
    mention = send(alice, room_id, text("hi carol", **{"m.mentions": {"user_ids": [carol.user_id]}}))
    cake = send(alice, room_id, text("cake for everyone"))
    assert unread(bob, room_id) == (0, 0)
    assert messages(bob) == []
    assert unread(carol, room_id) == (2, 1)
    assert unread(dave, room_id) == (2, 1)
    highlights = {n["event"]["event_id"] for n in notifications(dave, only="highlight")["notifications"]}
    assert highlights == {cake}
    highlights = {n["event"]["event_id"] for n in notifications(carol, only="highlight")["notifications"]}
    assert highlights == {mention}
    # Bob's master rule off again: what came before stays silent, what comes after counts.
    set_rule(bob, "override/.m.rule.master/enabled", {"enabled": False})
    send(alice, room_id, text("again"))
    assert unread(bob, room_id) == (1, 0)


def test_many_members_counted_at_once_each_from_their_own_receipt(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    members = [register_user(server.base_url) for _ in range(8)]
    room_id = shared_room(alice, *members)
    sent = [send(alice, room_id, text(f"message {i}")) for i in range(8)]
    # Member i has read up to message i - 1 (member 0 has read nothing).
    for i, member in enumerate(members[1:], start=1):
        receipt(member, room_id, sent[i - 1])
    with ThreadPoolExecutor(len(members)) as pool:
        found = list(pool.map(lambda member: unread(member, room_id), members))
    assert found == [(8 - i, 0) for i in range(len(members))]
