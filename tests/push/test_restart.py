"""Push actions are durable: counts and /notifications survive a restart, and evaluation goes on after it."""

from __future__ import annotations

from tests.push.test_evaluation import notifications, send, text, unread
from tests.support.client import register_user
from tests.support.server import RunningServer
from tests.support.sync import shared_room


def test_counts_survive_a_restart(server: RunningServer) -> None:
    alice, bob, carol = (register_user(server.base_url) for _ in range(3))
    room_id = shared_room(alice, bob, carol)
    mention = send(alice, room_id, text("before", **{"m.mentions": {"user_ids": [bob.user_id]}}))
    assert unread(bob, room_id) == (1, 1)
    server.restart()
    assert unread(bob, room_id) == (1, 1)
    after = send(alice, room_id, text("after"))
    assert unread(bob, room_id) == (2, 1)
    assert [n["event"]["event_id"] for n in notifications(bob)["notifications"]] == [after, mention]
