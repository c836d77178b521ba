"""Left rooms in sync: removals show on a fresh login, own leaves only on request, full state on request.

Clients rely on an initial sync listing, under ``rooms.leave``, the rooms the user was
kicked or banned from (a refused knock too), even without ``include_leave``: after a
fresh login that is the only way to learn of the removal.  Synapse behaves the same.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.client import Client, q, register_user
from tests.support.server import RunningServer
from tests.support.sync import create_room, invite, join, leave, send_text, sync

V3 = "/_matrix/client/v3"
INCLUDE_LEAVE = {"room": {"include_leave": True}}


def left_rooms(body: dict[str, Any]) -> dict[str, Any]:
    return body.get("rooms", {}).get("leave", {})


def moderate(moderator: Client, action: str, room_id: str, user_id: str) -> None:
    response = moderator.post(f"{V3}/rooms/{q(room_id)}/{action}", {"user_id": user_id, "reason": "test"})
    assert response.status == 200, response


def state_and_timeline_types(room: dict[str, Any]) -> list[str]:
    return [e["type"] for e in room["state"]["events"] + room["timeline"]["events"]]


@pytest.fixture(scope="module")
def removals(server: RunningServer) -> dict[str, Any]:
    """One owner's public room; a kicked, a banned, a self-left and a refused-knock user."""
    owner = register_user(server.base_url)
    room_id = create_room(owner, preset="public_chat")
    kicked, banned, quitter = (register_user(server.base_url) for _ in range(3))
    for user in (kicked, banned, quitter):
        join(user, room_id)
    send_text(owner, room_id, "before the removals")
    moderate(owner, "kick", room_id, str(kicked.user_id))
    moderate(owner, "ban", room_id, str(banned.user_id))
    leave(quitter, room_id)

    knock_room = create_room(owner, preset="private_chat", room_version="12")
    rules = owner.put(f"{V3}/rooms/{q(knock_room)}/state/m.room.join_rules/", {"join_rule": "knock"})
    assert rules.status == 200, rules
    knocker = register_user(server.base_url)
    knocked = knocker.post(f"{V3}/knock/{q(knock_room)}", {"reason": "let me in"})
    assert knocked.status == 200, knocked
    moderate(owner, "kick", knock_room, str(knocker.user_id))

    # An invite the user turned down is their own leave: not a removal.
    declined_room = create_room(owner)
    decliner = register_user(server.base_url)
    invite(owner, declined_room, str(decliner.user_id))
    leave(decliner, declined_room)
    return {"owner": owner, "room": room_id, "kicked": kicked, "banned": banned, "quitter": quitter,
            "knock_room": knock_room, "knocker": knocker, "declined_room": declined_room,
            "decliner": decliner}


def test_initial_sync_lists_rooms_the_user_was_kicked_or_banned_from(removals: dict[str, Any]) -> None:
    room_id = removals["room"]
    for name, membership in (("kicked", "leave"), ("banned", "ban")):
        user: Client = removals[name]
        room = left_rooms(sync(user)).get(room_id)
        assert room is not None, name
        own = [e for e in room["timeline"]["events"] + room["state"]["events"]
               if e["type"] == "m.room.member" and e["state_key"] == user.user_id]
        assert own and own[-1]["content"]["membership"] == membership
        assert own[-1]["sender"] == removals["owner"].user_id
        # Nothing after the removal is shown.
        assert room_id not in sync(user).get("rooms", {}).get("join", {})


def test_a_refused_knock_counts_as_a_removal(removals: dict[str, Any]) -> None:
    room = left_rooms(sync(removals["knocker"])).get(removals["knock_room"])
    assert room is not None
    members = [e for e in room["timeline"]["events"] + room["state"]["events"]
               if e["type"] == "m.room.member" and e["state_key"] == removals["knocker"].user_id]
    assert members[-1]["content"]["membership"] == "leave"


def test_own_leaves_need_include_leave(removals: dict[str, Any]) -> None:
    quitter, decliner = removals["quitter"], removals["decliner"]
    assert removals["room"] not in left_rooms(sync(quitter))
    assert removals["declined_room"] not in left_rooms(sync(decliner))
    assert removals["room"] in left_rooms(sync(quitter, sync_filter=INCLUDE_LEAVE))


def test_full_state_sync_with_include_leave_gives_a_left_rooms_whole_state(removals: dict[str, Any]) -> None:
    quitter: Client = removals["quitter"]
    room_id = removals["room"]
    since = sync(quitter)["next_batch"]
    # An incremental sync after the leave says nothing of the room...
    assert room_id not in left_rooms(sync(quitter, since, sync_filter=INCLUDE_LEAVE))
    # ...but a full-state one gives it with its whole state, create event included.
    for token in (since, None):
        body = sync(quitter, token, sync_filter=INCLUDE_LEAVE, full_state="true")
        room = left_rooms(body)[room_id]
        types = state_and_timeline_types(room)
        for wanted in ("m.room.create", "m.room.power_levels", "m.room.join_rules", "m.room.member"):
            assert wanted in types, (token, wanted, types)
    # Without include_leave a full-state sync still lists removals, not own leaves.
    assert room_id not in left_rooms(sync(quitter, since, full_state="true"))
    kicked: Client = removals["kicked"]
    kicked_since = sync(kicked)["next_batch"]
    room = left_rooms(sync(kicked, kicked_since, full_state="true"))[room_id]
    assert "m.room.create" in state_and_timeline_types(room)
