"""Backfill from our side between two Vignette servers: a user who joins a room on the other
server pages /messages back past the start of what its server holds, and its server fetches
the history from the room's server (``/backfill``) as it goes (issue 14, "History from other
servers"). History visibility applies as the room's state said at each event."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.client import Client, q
from tests.support.fed_pair import Pair
from tests.support.rooms import V3, create_room, messages, new_user, put_state, send_message

PAIR_PREFIX = "bf"


def page_back(client: Client, room_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """Every event /messages gives going backwards from now, newest first, until it runs out."""
    seen: list[dict[str, Any]] = []
    token = client.get(f"{V3}/sync").body["next_batch"]
    for _ in range(50):
        page = messages(client, room_id, dir="b", limit=limit, **{"from": token})
        seen.extend(page["chunk"])
        if "end" not in page or not page["chunk"]:
            return seen
        token = page["end"]
    raise AssertionError("pagination never ended")


def test_backfilling_500_events(pair: Pair) -> None:
    alice, bob = new_user(pair.a.base_url), new_user(pair.b.base_url)
    room_id = create_room(alice, preset="public_chat")
    for i in range(500):
        send_message(alice, room_id, f"old {i}")
    response = bob.post(f"{V3}/join/{q(room_id)}", {}, params={"via": pair.a.server_name})
    assert response.status == 200, response
    events = page_back(bob, room_id)
    ids = [e["event_id"] for e in events]
    assert len(ids) == len(set(ids)), "an event was served twice"
    bodies = [e["content"].get("body") for e in events if e["type"] == "m.room.message"]
    assert bodies == [f"old {i}" for i in reversed(range(500))]
    assert events[-1]["type"] == "m.room.create"
    # The same history as alice sees it on A (bob's join on top).
    theirs = [e["event_id"] for e in page_back(alice, room_id)]
    assert ids == theirs
    # Backfilled history never shows up as new in bob's sync.
    since = bob.get(f"{V3}/sync").body["next_batch"]
    send_message(alice, room_id, "new")
    body = bob.get(f"{V3}/sync", params={"since": since, "timeout": 10000}).body
    timeline = body["rooms"]["join"][room_id]["timeline"]["events"]
    assert all(not (e["content"].get("body") or "").startswith("old ") for e in timeline)


@pytest.mark.parametrize("visibility,sees_history", [("shared", True), ("world_readable", True),
                                                     ("invited", False), ("joined", False)])
def test_history_visibility_as_the_other_server_sees_it(pair: Pair, visibility: str, sees_history: bool) -> None:
    alice, bob = new_user(pair.a.base_url), new_user(pair.b.base_url)
    room_id = create_room(alice, preset="public_chat")
    assert put_state(alice, room_id, "m.room.history_visibility", {"history_visibility": visibility}).status == 200
    for i in range(5):
        send_message(alice, room_id, f"before {i}")
    assert bob.post(f"{V3}/join/{q(room_id)}", {}, params={"via": pair.a.server_name}).status == 200
    bodies = [e["content"].get("body") for e in page_back(bob, room_id) if e["type"] == "m.room.message"]
    if sees_history:
        assert bodies == [f"before {i}" for i in reversed(range(5))]
    else:
        assert bodies == []
