"""A since token stored before a restart resumes exactly where it left off."""

from __future__ import annotations

from tests.support.client import register_user
from tests.support.server import RunningServer
from tests.support.sync import create_room, send_text, sync, timeline_events


def test_token_survives_restart(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    room_id = create_room(alice)
    send_text(alice, room_id, "before")
    since = sync(alice)["next_batch"]
    after_token = send_text(alice, room_id, "after the token, before the restart")
    server.restart()
    after_restart = send_text(alice, room_id, "after the restart")
    body = sync(alice, since)
    assert [e["event_id"] for e in timeline_events(body, room_id)] == [after_token, after_restart]
    assert timeline_events(sync(alice, body["next_batch"]), room_id) == []
