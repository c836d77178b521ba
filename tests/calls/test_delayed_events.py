"""Delayed events (MSC4140): scheduling on /send and /state, the management endpoints, and
the rule that someone else's state cancels a delayed state event.

Waits are bounded polls for something the server must do eventually; what is asserted
is order and content (an event sent by its timer carries an origin_server_ts no earlier
than its due time), never how fast.
"""

from __future__ import annotations

from typing import Any

from tests.calls.conftest import MAX_DELAY_MS
from tests.support.calls import (
    delay_id_of,
    delayed_send,
    delayed_state,
    manage,
    room_event_of,
    scheduled,
    wait_for,
)
from tests.support.client import Client
from tests.support.rooms import create_room, get_state, invite, join, new_user, put_state
from tests.support.server import RunningServer
from tests.support.sync import sync, sync_until, timeline_events


def two_members(server: RunningServer, **create: Any) -> tuple[Client, Client, str]:
    owner, member = new_user(server.base_url), new_user(server.base_url)
    room_id = create_room(owner, **create)
    invite(owner, room_id, str(member.user_id))
    join(member, room_id)
    return owner, member, room_id


def body_is(text: str) -> Any:
    return lambda event: event["type"] == "m.room.message" and event["content"].get("body") == text


def test_versions_and_capabilities_advertise_it(delayed_server: RunningServer) -> None:
    user = new_user(delayed_server.base_url)
    versions = user.get("/_matrix/client/versions").body
    assert versions["unstable_features"].get("org.matrix.msc4140") is True
    capability = user.get("/_matrix/client/v3/capabilities").body["capabilities"]["org.matrix.msc4140.delayed_events"]
    assert capability == {"max_delay_ms": MAX_DELAY_MS, "max_scheduled": 20}


def test_a_delayed_message_is_sent_when_due(delayed_server: RunningServer) -> None:
    alice, bob, room_id = two_members(delayed_server)
    since = sync(bob)["next_batch"]
    delay_id = delay_id_of(delayed_send(alice, room_id, {"msgtype": "m.text", "body": "later"}, 800))
    listed = scheduled(alice)[delay_id]
    assert listed["room_id"] == room_id and listed["type"] == "m.room.message" and listed["delay"] == 800
    assert listed["content"] == {"msgtype": "m.text", "body": "later"}
    assert "state_key" not in listed
    assert delay_id not in scheduled(bob)

    body, _ = sync_until(bob, since, lambda b: any(body_is("later")(e) for e in timeline_events(b, room_id)))
    event = next(e for e in timeline_events(body, room_id) if body_is("later")(e))
    assert event["sender"] == alice.user_id
    assert event["origin_server_ts"] >= listed["running_since"] + 800
    # The sender (and only the sender) sees which delayed event it came from.
    assert "org.matrix.msc4140.delay_id" not in event["unsigned"]
    own = room_event_of(alice, room_id, body_is("later"))
    assert own["unsigned"]["org.matrix.msc4140.delay_id"] == delay_id
    assert "transaction_id" not in own["unsigned"]
    assert delay_id not in scheduled(alice)
    assert manage(alice, delay_id, "send").status == 404


def test_a_retried_delayed_send_keeps_its_delay_id(delayed_server: RunningServer) -> None:
    alice, _, room_id = two_members(delayed_server)
    first = delay_id_of(delayed_send(alice, room_id, {"body": "once"}, 60_000, txn_id="same-txn"))
    again = delay_id_of(delayed_send(alice, room_id, {"body": "once"}, 60_000, txn_id="same-txn"))
    assert again == first
    assert list(scheduled(alice)) == [first]
    other = delay_id_of(delayed_send(alice, room_id, {"body": "twice"}, 60_000, txn_id="other-txn"))
    assert other != first and set(scheduled(alice)) == {first, other}


def test_a_delayed_state_event_is_sent_when_due(delayed_server: RunningServer) -> None:
    alice, bob, room_id = two_members(delayed_server)
    delay_id = delay_id_of(delayed_state(alice, room_id, "m.room.topic", "", {"topic": "soon"}, 600))
    assert scheduled(alice)[delay_id]["state_key"] == ""
    wait_for(lambda: get_state(bob, room_id, "m.room.topic").body.get("topic") == "soon", "the delayed topic")
    # The row goes in its own transaction after the event is sent: a loaded machine can answer in between.
    wait_for(lambda: delay_id not in scheduled(alice), "the sent delayed event to leave the schedule")


def test_restart_pushes_the_send_back(delayed_server: RunningServer) -> None:
    alice, bob, room_id = two_members(delayed_server)
    # Delays leave room for a loaded machine: a timer that fires between our requests breaks the test.
    delay_id = delay_id_of(delayed_send(alice, room_id, {"msgtype": "m.text", "body": "heartbeat"}, 5000))
    started = scheduled(alice)[delay_id]["running_since"]
    for _ in range(3):
        assert manage(alice, delay_id, "restart", token=False).status == 200
    restarted = scheduled(alice)[delay_id]["running_since"]
    assert restarted >= started
    event = wait_for(lambda: room_event_of(bob, room_id, body_is("heartbeat")), "the restarted event")
    assert event["origin_server_ts"] >= restarted + 5000


def test_cancel_means_it_is_never_sent(delayed_server: RunningServer) -> None:
    alice, bob, room_id = two_members(delayed_server)
    cancelled = delay_id_of(delayed_send(alice, room_id, {"msgtype": "m.text", "body": "cancelled"}, 4000))
    marker = delay_id_of(delayed_send(alice, room_id, {"msgtype": "m.text", "body": "marker"}, 4500))
    assert manage(alice, cancelled, "cancel").status == 200
    assert manage(alice, cancelled, "cancel").status == 404
    assert set(scheduled(alice)) == {marker}
    # Timers fire in due order: once the later marker is in, the cancelled one would be too.
    wait_for(lambda: room_event_of(bob, room_id, body_is("marker")), "the marker")
    assert room_event_of(bob, room_id, body_is("cancelled")) is None


def test_send_action_sends_at_once(delayed_server: RunningServer) -> None:
    alice, bob, room_id = two_members(delayed_server)
    delay_id = delay_id_of(delayed_state(alice, room_id, "m.room.name", "", {"name": "now"}, MAX_DELAY_MS))
    response = manage(alice, delay_id, "send", in_body=True, token=False)
    assert response.status == 200 and response.body == {}
    assert get_state(bob, room_id, "m.room.name").body == {"name": "now"}
    assert delay_id not in scheduled(alice)
    for action in ("send", "restart", "cancel"):
        assert manage(alice, delay_id, action).errcode == "M_NOT_FOUND"
        assert manage(alice, delay_id, action, in_body=True).errcode == "M_NOT_FOUND"


def test_send_action_reports_why_the_event_could_not_be_sent(delayed_server: RunningServer) -> None:
    alice, bob, room_id = two_members(delayed_server)
    # Bob may schedule a power-levels change, but may not send one (the check is at send time).
    delay_id = delay_id_of(delayed_state(bob, room_id, "m.room.power_levels", "",
                                         {"users": {str(bob.user_id): 100}}, MAX_DELAY_MS))
    response = manage(bob, delay_id, "send")
    assert response.status == 403 and response.errcode == "M_FORBIDDEN"
    assert delay_id not in scheduled(bob)


def test_an_event_the_room_refuses_when_due_is_dropped(delayed_server: RunningServer) -> None:
    alice, bob, room_id = two_members(delayed_server)
    refused = delay_id_of(delayed_state(bob, room_id, "m.room.power_levels", "",
                                        {"users": {str(bob.user_id): 100}}, 300))
    marker = delay_id_of(delayed_send(bob, room_id, {"msgtype": "m.text", "body": "after refusal"}, 900))
    wait_for(lambda: room_event_of(alice, room_id, body_is("after refusal")), "the marker")
    assert refused not in scheduled(bob) and marker not in scheduled(bob)
    levels = get_state(alice, room_id, "m.room.power_levels").body
    assert str(bob.user_id) not in levels.get("users", {})


def test_state_set_by_someone_else_cancels_a_delayed_state_event(delayed_server: RunningServer) -> None:
    alice, bob, room_id = two_members(delayed_server,
                                      power_level_content_override={"events": {"org.example.note": 0}})
    key = "shared-key"
    mine = delay_id_of(delayed_state(bob, room_id, "org.example.note", key, {"by": "bob, later"}, MAX_DELAY_MS))
    # Bob's own update of the same state does not cancel his delayed one ...
    assert put_state(bob, room_id, "org.example.note", {"by": "bob, now"}, key).status == 200
    other_key = delay_id_of(delayed_state(bob, room_id, "org.example.note", "other", {"x": 1}, MAX_DELAY_MS))
    assert mine in scheduled(bob)
    # ... but Alice setting it does, and only for that key.
    assert put_state(alice, room_id, "org.example.note", {"by": "alice"}, key).status == 200
    wait_for(lambda: mine not in scheduled(bob), "the delayed state event to be cancelled")
    assert other_key in scheduled(bob)
    assert get_state(bob, room_id, "org.example.note", key).body == {"by": "alice"}
