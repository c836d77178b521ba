"""Push-rule evaluation seen from clients: unread counts in /sync, and GET /notifications."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from tests.support.client import Client, q, register_user
from tests.support.server import RunningServer
from tests.support.sync import create_room, invite, join, joined_room, shared_room, sync

V3 = "/_matrix/client/v3"
THREADS_FILTER = {"room": {"timeline": {"unread_thread_notifications": True}}}


def send(client: Client, room_id: str, content: dict[str, Any], event_type: str = "m.room.message") -> str:
    response = client.put(f"{V3}/rooms/{q(room_id)}/send/{event_type}/{secrets.token_hex(8)}", content)
    assert response.status == 200, response
    return response.body["event_id"]


def text(body: str, **extra: Any) -> dict[str, Any]:
    return {"msgtype": "m.text", "body": body, **extra}


def counts(client: Client, room_id: str, sync_filter: Any = None) -> dict[str, Any]:
    room = joined_room(sync(client, sync_filter=sync_filter), room_id)
    assert room is not None
    return room


def unread(client: Client, room_id: str) -> tuple[int, int]:
    found = counts(client, room_id)["unread_notifications"]
    return found["notification_count"], found["highlight_count"]


def receipt(client: Client, room_id: str, event_id: str, receipt_type: str = "m.read",
            **body: Any) -> None:
    response = client.post(f"{V3}/rooms/{q(room_id)}/receipt/{receipt_type}/{q(event_id)}", body)
    assert response.status == 200, response


def notifications(client: Client, **params: Any) -> dict[str, Any]:
    """GET /notifications, leaving out the invite every invited member has."""
    response = client.get(f"{V3}/notifications", params=params or None)
    assert response.status == 200, response
    body = response.body
    body["notifications"] = [n for n in body["notifications"] if n["event"]["type"] != "m.room.member"]
    return body


def set_rule(client: Client, path: str, body: dict[str, Any]) -> None:
    response = client.put(f"{V3}/pushrules/global/{path}", body)
    assert response.status == 200, response


@pytest.fixture
def trio(server: RunningServer) -> tuple[Client, Client, Client, str]:
    """alice (the creator, power 100), bob and carol (power 0) in a three-member room."""
    alice, bob, carol = (register_user(server.base_url) for _ in range(3))
    return alice, bob, carol, shared_room(alice, bob, carol)


def test_a_message_in_a_group_room_notifies_without_highlight(trio: tuple[Client, Client, Client, str]) -> None:
    alice, bob, carol, room_id = trio
    send(alice, room_id, text("hello all"))
    assert unread(bob, room_id) == (1, 0)
    assert unread(carol, room_id) == (1, 0)
    assert unread(alice, room_id) == (0, 0)  # never for one's own events


def test_a_mention_highlights_only_the_mentioned(trio: tuple[Client, Client, Client, str]) -> None:
    alice, bob, carol, room_id = trio
    send(alice, room_id, text("look", **{"m.mentions": {"user_ids": [bob.user_id]}}))
    assert unread(bob, room_id) == (1, 1)
    assert unread(carol, room_id) == (1, 0)
    [notification] = notifications(bob)["notifications"]
    assert {"set_tweak": "highlight"} in notification["actions"]


def test_a_display_name_in_the_body_highlights_without_m_mentions(trio: tuple[Client, Client, Client, str]) -> None:
    alice, bob, carol, room_id = trio
    response = bob.put(f"{V3}/profile/{q(bob.user_id)}/displayname", {"displayname": "Bobby Tables"})
    assert response.status == 200, response
    send(alice, room_id, text("hey bobby tables, lunch?"))
    assert unread(bob, room_id) == (1, 1)
    # With m.mentions present, the legacy body rules stand aside (spec v1.7).
    send(alice, room_id, text("Bobby Tables again", **{"m.mentions": {}}))
    assert unread(bob, room_id) == (2, 1)


def test_a_one_to_one_room_notifies_with_sound(server: RunningServer) -> None:
    alice, bob = register_user(server.base_url), register_user(server.base_url)
    room_id = shared_room(alice, bob)
    event_id = send(alice, room_id, text("just us"))
    assert unread(bob, room_id) == (1, 0)
    [notification] = [n for n in notifications(bob)["notifications"] if n["event"]["event_id"] == event_id]
    assert notification["actions"] == ["notify", {"set_tweak": "sound", "value": "default"}]
    assert notification["room_id"] == room_id and notification["read"] is False


def test_master_rule_silences_everything(trio: tuple[Client, Client, Client, str]) -> None:
    alice, bob, _carol, room_id = trio
    set_rule(bob, "override/.m.rule.master/enabled", {"enabled": True})
    send(alice, room_id, text("anyone?", **{"m.mentions": {"user_ids": [bob.user_id], "room": True}}))
    assert unread(bob, room_id) == (0, 0)
    assert notifications(bob)["notifications"] == []
    set_rule(bob, "override/.m.rule.master/enabled", {"enabled": False})
    send(alice, room_id, text("now?"))
    assert unread(bob, room_id) == (1, 0)


def test_room_mention_needs_the_notifications_power(trio: tuple[Client, Client, Client, str]) -> None:
    alice, bob, carol, room_id = trio
    at_room = text("@room hello", **{"m.mentions": {"room": True}})
    send(carol, room_id, at_room)  # power 0 < notifications.room (50)
    assert unread(bob, room_id) == (1, 0)
    send(alice, room_id, at_room)  # the creator may
    assert unread(bob, room_id) == (2, 1)
    # The legacy body rule (no m.mentions) follows the same permission.
    send(carol, room_id, text("@room legacy"))
    assert unread(bob, room_id) == (3, 1)
    response = alice.get(f"{V3}/rooms/{q(room_id)}/state/m.room.power_levels/")
    assert response.status == 200, response
    levels = response.body
    levels["notifications"] = {"room": 0}
    response = alice.put(f"{V3}/rooms/{q(room_id)}/state/m.room.power_levels/", levels)
    assert response.status == 200, response
    send(carol, room_id, at_room)
    assert unread(bob, room_id) == (4, 2)


@pytest.mark.parametrize("receipt_type", ["m.read", "m.read.private"])
def test_counts_reset_on_a_read_receipt(trio: tuple[Client, Client, Client, str], receipt_type: str) -> None:
    alice, bob, _carol, room_id = trio
    send(alice, room_id, text("one", **{"m.mentions": {"user_ids": [bob.user_id]}}))
    second = send(alice, room_id, text("two"))
    assert unread(bob, room_id) == (2, 1)
    receipt(bob, room_id, second, receipt_type)
    assert unread(bob, room_id) == (0, 0)
    send(alice, room_id, text("three"))
    assert unread(bob, room_id) == (1, 0)
    read_flags = {n["event"]["event_id"]: n["read"] for n in notifications(bob)["notifications"]}
    assert read_flags[second] is True and list(read_flags.values()).count(False) == 1


def test_thread_counts_and_threaded_receipts(trio: tuple[Client, Client, Client, str]) -> None:
    alice, bob, _carol, room_id = trio
    root = send(alice, room_id, text("root"))
    in_thread = {"m.relates_to": {"rel_type": "m.thread", "event_id": root}}
    send(alice, room_id, text("reply one", **in_thread))
    reply = send(alice, room_id, text("reply two", **in_thread,
                                      **{"m.mentions": {"user_ids": [bob.user_id]}}))
    room = counts(bob, room_id, THREADS_FILTER)
    assert room["unread_notifications"] == {"notification_count": 1, "highlight_count": 0}
    assert room["unread_thread_notifications"] == {root: {"notification_count": 2, "highlight_count": 1}}
    # Without the filter flag: one total.
    assert unread(bob, room_id) == (3, 1)
    # A receipt in the thread clears the thread only.
    receipt(bob, room_id, reply, thread_id=root)
    room = counts(bob, room_id, THREADS_FILTER)
    assert room["unread_notifications"]["notification_count"] == 1
    assert room["unread_thread_notifications"] == {}
    # A main-timeline receipt on the root clears the main timeline.
    receipt(bob, room_id, root, thread_id="main")
    assert unread(bob, room_id) == (0, 0)


def test_an_unthreaded_receipt_clears_threads_before_it(trio: tuple[Client, Client, Client, str]) -> None:
    alice, bob, _carol, room_id = trio
    root = send(alice, room_id, text("root"))
    last = send(alice, room_id, text("reply", **{"m.relates_to": {"rel_type": "m.thread", "event_id": root}}))
    receipt(bob, room_id, last)
    room = counts(bob, room_id, THREADS_FILTER)
    assert room["unread_notifications"]["notification_count"] == 0
    assert room["unread_thread_notifications"] == {}


def test_notices_edits_and_reactions_do_not_notify(trio: tuple[Client, Client, Client, str]) -> None:
    alice, bob, _carol, room_id = trio
    target = send(alice, room_id, text("original"))
    send(alice, room_id, {"msgtype": "m.notice", "body": "bot says"})
    send(alice, room_id, text("* edited", **{"m.new_content": text("edited"),
                                             "m.relates_to": {"rel_type": "m.replace", "event_id": target}}))
    send(alice, room_id, {"m.relates_to": {"rel_type": "m.annotation", "event_id": target, "key": "👍"}},
         "m.reaction")
    assert unread(bob, room_id) == (1, 0)


def test_an_invite_notifies_the_invitee(server: RunningServer) -> None:
    alice, bob = register_user(server.base_url), register_user(server.base_url)
    room_id = create_room(alice)
    invite(alice, room_id, bob.user_id)
    response = bob.get(f"{V3}/notifications")
    assert response.status == 200, response
    [notification] = response.body["notifications"]
    assert notification["event"]["type"] == "m.room.member"
    assert notification["event"]["state_key"] == bob.user_id
    # Once joined, the invite is not unread in the room.
    join(bob, room_id)
    assert unread(bob, room_id) == (0, 0)


def test_user_rules_apply_at_once(trio: tuple[Client, Client, Client, str]) -> None:
    alice, bob, carol, room_id = trio
    send(alice, room_id, text("warm the cache"))
    assert unread(bob, room_id) == (1, 0)
    set_rule(bob, f"room/{q(room_id)}", {"actions": []})
    send(alice, room_id, text("muted now"))
    assert unread(bob, room_id) == (1, 0)
    set_rule(bob, f"sender/{q(carol.user_id)}", {"actions": ["notify", {"set_tweak": "highlight"}]})
    response = bob.delete(f"{V3}/pushrules/global/room/{q(room_id)}")
    assert response.status == 200, response
    send(carol, room_id, text("from carol"))
    assert unread(bob, room_id) == (2, 1)
    set_rule(bob, "content/cake", {"actions": ["notify", {"set_tweak": "highlight"}], "pattern": "cake*"})
    send(alice, room_id, text("Cakes for all"))
    assert unread(bob, room_id) == (3, 2)


def test_notifications_pages_and_filters_highlights(trio: tuple[Client, Client, Client, str]) -> None:
    alice, bob, _carol, room_id = trio
    sent = [send(alice, room_id, text(f"m{i}", **({"m.mentions": {"user_ids": [bob.user_id]}} if i % 2 else {})))
            for i in range(5)]
    first = notifications(bob, limit=2)
    assert [n["event"]["event_id"] for n in first["notifications"]] == [sent[4], sent[3]]
    second = notifications(bob, limit=2, **{"from": first["next_token"]})
    assert [n["event"]["event_id"] for n in second["notifications"]] == [sent[2], sent[1]]
    rest = notifications(bob, limit=10, **{"from": second["next_token"]})
    assert [n["event"]["event_id"] for n in rest["notifications"]] == [sent[0]]
    assert "next_token" not in rest
    highlights = notifications(bob, only="highlight")["notifications"]
    assert [n["event"]["event_id"] for n in highlights] == [sent[3], sent[1]]
    entry = first["notifications"][0]
    assert isinstance(entry["ts"], int) and entry["room_id"] == room_id and entry["read"] is False
    assert notifications(alice)["notifications"] == []


@pytest.mark.parametrize("params", [{"from": "nope"}, {"from": "-1"}, {"limit": "many"}, {"limit": "-3"}])
def test_notifications_bad_params(server: RunningServer, params: dict[str, str]) -> None:
    alice = register_user(server.base_url)
    response = alice.get(f"{V3}/notifications", params=params)
    assert response.status == 400 and response.errcode == "M_INVALID_PARAM", response


def test_notifications_needs_a_token(server: RunningServer) -> None:
    response = Client(server.base_url).get(f"{V3}/notifications")
    assert response.status == 401


def test_ignored_users_do_not_notify(trio: tuple[Client, Client, Client, str]) -> None:
    alice, bob, carol, room_id = trio
    send(carol, room_id, text("before"))
    assert unread(bob, room_id) == (1, 0)
    response = bob.put(f"{V3}/user/{q(bob.user_id)}/account_data/m.ignored_user_list",
                       {"ignored_users": {carol.user_id: {}}})
    assert response.status == 200, response
    send(carol, room_id, text("ignored", **{"m.mentions": {"user_ids": [bob.user_id]}}))
    send(alice, room_id, text("not ignored"))
    assert unread(bob, room_id) == (2, 0)
