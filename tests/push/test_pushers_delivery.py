"""HTTP pushers end to end: clients set pushers and send messages over HTTP, the server
evaluates push rules and POSTs ``/_matrix/push/v1/notify`` to a real push gateway on
loopback (tests/support/push_gateway.py), which records what arrives."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.client import Client, q
from tests.support.databases import ENGINES, drop_database
from tests.support.push_gateway import PushGateway, pusher_body
from tests.support.rooms import V3, create_room, join, new_user, send_message
from tests.support.server import RunningServer, start_test_server

WAIT_S = 30.0


@pytest.fixture(scope="module", params=ENGINES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # The gateway listens on loopback, which the outbound IP guard refuses unless allowed.
    running, database = start_test_server(tmp_path_factory.mktemp(f"push-{request.param}"), request.param,
                                          ip_range_whitelist=["127.0.0.0/8"])
    try:
        yield running
    finally:
        running.stop()
        drop_database(database)


@pytest.fixture
def gateway() -> Iterator[PushGateway]:
    running = PushGateway().start()
    yield running
    running.stop()


def named_user(server: RunningServer, name: str) -> Client:
    client = new_user(server.base_url)
    response = client.put(f"{V3}/profile/{q(client.user_id or '')}/displayname", {"displayname": name})
    assert response.status == 200, response
    return client


def one_to_one(alice: Client, bob: Client, name: str = "Alice and Bob") -> str:
    room_id = create_room(alice, preset="private_chat", name=name, invite=[bob.user_id])
    join(bob, room_id)
    return room_id


def add_pusher(client: Client, gateway: PushGateway, pushkey: str, **data: Any) -> None:
    response = client.post(f"{V3}/pushers/set", pusher_body(gateway.url, pushkey, **data))
    assert response.status == 200, response


def eventually(check: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def for_pushkey(gateway: PushGateway, pushkey: str) -> list[dict[str, Any]]:
    return [n for n in gateway.delivered() if n["devices"][0]["pushkey"] == pushkey]


def test_a_message_in_a_one_to_one_room_reaches_the_gateway(server: RunningServer, gateway: PushGateway) -> None:
    alice, bob = named_user(server, "Alice"), named_user(server, "Bob")
    room_id = one_to_one(alice, bob)
    add_pusher(bob, gateway, "bob-phone", extra="kept")
    event_id = send_message(alice, room_id, "hello there")
    notification = gateway.wait_for_delivery(event_id)
    assert notification["room_id"] == room_id
    assert notification["type"] == "m.room.message"
    assert notification["sender"] == alice.user_id
    assert notification["sender_display_name"] == "Alice"
    assert notification["room_name"] == "Alice and Bob"
    assert notification["content"] == {"msgtype": "m.text", "body": "hello there"}
    assert notification["prio"] == "high"  # .m.rule.room_one_to_one sets a sound
    assert notification["counts"]["unread"] == 1
    [device] = notification["devices"]
    assert (device["app_id"], device["pushkey"]) == ("org.example.app", "bob-phone")
    assert device["data"] == {"extra": "kept"}  # everything the client gave but the url
    assert device["tweaks"] == {"sound": "default"}
    assert abs(device["pushkey_ts"] - time.time()) < 3600  # seconds, not ms


def test_counts_are_the_rooms_with_unread_notifications(server: RunningServer, gateway: PushGateway) -> None:
    alice, bob = named_user(server, "Alice"), named_user(server, "Bob")
    first, second = one_to_one(alice, bob, "one"), one_to_one(alice, bob, "two")
    add_pusher(bob, gateway, "bob-counts")
    gateway.wait_for_delivery(send_message(alice, first, "a"))
    in_second = gateway.wait_for_delivery(send_message(alice, second, "b"))
    assert in_second["counts"]["unread"] == 2
    # Bob reads the first room: the next push counts only the second (and this one's room).
    last_in_first = send_message(alice, first, "c")
    gateway.wait_for_delivery(last_in_first)
    response = bob.post(f"{V3}/rooms/{q(first)}/receipt/m.read/{q(last_in_first)}", {})
    assert response.status == 200, response
    after_read = gateway.wait_for_delivery(send_message(alice, second, "d"))
    assert after_read["counts"]["unread"] == 1


def test_a_read_receipt_sends_the_new_badge(server: RunningServer, gateway: PushGateway) -> None:
    alice, bob = named_user(server, "Alice"), named_user(server, "Bob")
    room_id = one_to_one(alice, bob)
    add_pusher(bob, gateway, "bob-badge", extra="kept")
    gateway.wait_for_delivery(send_message(alice, room_id, "one"))
    last = send_message(alice, room_id, "two")
    assert gateway.wait_for_delivery(last)["counts"]["unread"] == 1
    response = bob.post(f"{V3}/rooms/{q(room_id)}/receipt/m.read/{q(last)}", {})
    assert response.status == 200, response

    def badges(gw: PushGateway) -> list[dict[str, Any]]:
        return [n for n in gw.delivered() if "event_id" not in n and n["devices"][0]["pushkey"] == "bob-badge"]

    gateway.wait_for(lambda gw: bool(badges(gw)), "a badge update")
    [badge] = badges(gateway)
    assert badge["counts"] == {"unread": 0}
    [device] = badge["devices"]
    assert (device["app_id"], device["pushkey"], device["data"]) == ("org.example.app", "bob-badge", {"extra": "kept"})
    # Alice has no pusher: her receipt sends nothing.
    alice.post(f"{V3}/rooms/{q(room_id)}/receipt/m.read/{q(last)}", {})
    assert len([n for n in gateway.delivered() if "event_id" not in n]) == 1


def test_event_id_only_sends_no_event_details(server: RunningServer, gateway: PushGateway) -> None:
    alice, bob = named_user(server, "Alice"), named_user(server, "Bob")
    room_id = one_to_one(alice, bob)
    add_pusher(bob, gateway, "bob-private", format="event_id_only")
    notification = gateway.wait_for_delivery(send_message(alice, room_id, "secret words"))
    assert set(notification) == {"event_id", "room_id", "counts", "devices"}
    assert notification["room_id"] == room_id
    assert notification["counts"]["unread"] == 1
    assert notification["devices"][0]["data"] == {"format": "event_id_only"}
    assert "secret words" not in repr(gateway.attempts)


def test_no_one_is_pushed_someone_elses_events(server: RunningServer, gateway: PushGateway) -> None:
    alice, bob, carol = named_user(server, "Alice"), named_user(server, "Bob"), named_user(server, "Carol")
    room_ab = one_to_one(alice, bob)
    room_ac = one_to_one(alice, carol, "Alice and Carol")
    add_pusher(alice, gateway, "alice-phone")
    add_pusher(bob, gateway, "bob-phone")
    add_pusher(carol, gateway, "carol-phone")
    for_bob = send_message(alice, room_ab, "for bob")
    for_carol = send_message(alice, room_ac, "for carol")
    gateway.wait_for_delivery(for_bob)
    gateway.wait_for_delivery(for_carol)
    from_bob = gateway.wait_for_delivery(send_message(bob, room_ab, "from bob"))
    assert from_bob["devices"][0]["pushkey"] == "alice-phone"
    assert [n["event_id"] for n in for_pushkey(gateway, "bob-phone")] == [for_bob]
    assert [n["event_id"] for n in for_pushkey(gateway, "carol-phone")] == [for_carol]
    assert [n["event_id"] for n in for_pushkey(gateway, "alice-phone")] == [from_bob["event_id"]]


def test_a_notice_is_not_pushed(server: RunningServer, gateway: PushGateway) -> None:
    alice, bob = named_user(server, "Alice"), named_user(server, "Bob")
    room_id = one_to_one(alice, bob)
    add_pusher(bob, gateway, "bob-notices")
    notice = send_message(alice, room_id, "a bot says", msgtype="m.notice")
    message = send_message(alice, room_id, "a person says")
    gateway.wait_for_delivery(message)
    assert notice not in [n["event_id"] for n in gateway.delivered()]


def test_it_retries_while_the_gateway_fails_and_delivers_once(server: RunningServer,
                                                              gateway: PushGateway) -> None:
    alice, bob = named_user(server, "Alice"), named_user(server, "Bob")
    room_id = one_to_one(alice, bob)
    add_pusher(bob, gateway, "bob-retry")
    gateway.fail_next = 3
    first = send_message(alice, room_id, "first")
    gateway.wait_for(lambda gw: gw.failed_count() >= 1, "a failed attempt")
    second = send_message(alice, room_id, "second")  # queued behind the failing one
    gateway.wait_for_delivery(second)
    assert [n["event_id"] for n in for_pushkey(gateway, "bob-retry")] == [first, second]
    assert gateway.failed_count() == 3
    # Once it works again, a new message goes out at once and nothing is repeated.
    third = send_message(alice, room_id, "third")
    gateway.wait_for_delivery(third)
    assert [n["event_id"] for n in for_pushkey(gateway, "bob-retry")] == [first, second, third]


def test_a_rejected_pushkey_removes_the_pusher(server: RunningServer, gateway: PushGateway) -> None:
    alice, bob = named_user(server, "Alice"), named_user(server, "Bob")
    room_id = one_to_one(alice, bob)
    add_pusher(bob, gateway, "expired-token")
    add_pusher(bob, gateway, "good-token", app_id="org.example.other")
    gateway.rejected.add("expired-token")
    gateway.wait_for_delivery(send_message(alice, room_id, "hello"))

    def remaining() -> list[str]:
        response = bob.get(f"{V3}/pushers")
        assert response.status == 200, response
        return [p["pushkey"] for p in response.body["pushers"]]

    eventually(lambda: remaining() == ["good-token"], "the rejected pusher to go")
    later = send_message(alice, room_id, "later")
    gateway.wait_for(lambda gw: any(n["event_id"] == later for n in for_pushkey(gw, "good-token")),
                     "the good pusher's notification")
    assert later not in [n["event_id"] for n in for_pushkey(gateway, "expired-token")]


def test_a_deleted_pusher_is_sent_nothing(server: RunningServer, gateway: PushGateway) -> None:
    alice, bob = named_user(server, "Alice"), named_user(server, "Bob")
    room_id = one_to_one(alice, bob)
    add_pusher(bob, gateway, "bob-old")
    add_pusher(bob, gateway, "bob-new", app_id="org.example.other")
    response = bob.post(f"{V3}/pushers/set", {"kind": None, "app_id": "org.example.app", "pushkey": "bob-old"})
    assert response.status == 200, response
    event_id = send_message(alice, room_id, "only to the new one")
    gateway.wait_for(lambda gw: bool(for_pushkey(gw, "bob-new")), "the new pusher's notification")
    assert for_pushkey(gateway, "bob-new")[0]["event_id"] == event_id
    assert for_pushkey(gateway, "bob-old") == []


def test_a_restart_resumes_delivery_where_it_stopped(server: RunningServer, gateway: PushGateway) -> None:
    alice, bob = named_user(server, "Alice"), named_user(server, "Bob")
    room_id = one_to_one(alice, bob)
    add_pusher(bob, gateway, "bob-restart")
    gateway.down = True
    event_id = send_message(alice, room_id, "sent while the gateway is down")
    gateway.wait_for(lambda gw: gw.failed_count() >= 1, "a failed attempt")
    server.stop()
    gateway.down = False
    server.start()
    gateway.wait_for_delivery(event_id)
    later = send_message(alice, room_id, "after the restart")
    gateway.wait_for_delivery(later)
    assert [n["event_id"] for n in for_pushkey(gateway, "bob-restart")] == [event_id, later]


def test_a_mention_is_pushed_as_a_highlight(server: RunningServer, gateway: PushGateway) -> None:
    alice, bob, carol = named_user(server, "Alice"), named_user(server, "Bob"), named_user(server, "Carol")
    room_id = create_room(alice, preset="public_chat", name="Group")
    join(bob, room_id)
    join(carol, room_id)
    add_pusher(bob, gateway, "bob-group")
    plain = gateway.wait_for_delivery(send_message(alice, room_id, "morning all"))
    assert plain["prio"] == "low" and plain["devices"][0]["tweaks"] == {}  # .m.rule.message
    mention = gateway.wait_for_delivery(send_message(alice, room_id, "Bob, are you there?"))
    assert mention["prio"] == "high"
    assert mention["devices"][0]["tweaks"] == {"highlight": True, "sound": "default"}
