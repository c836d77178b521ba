"""MatrixRTC call membership (org.matrix.msc3401.call.member, m.rtc.member) under the
ordinary state rules, as Element Call uses it, with its delayed "leave" (MSC4140).

In room versions 1-12 a state key that starts with "@" must equal the sender, so
matrix-js-sdk prefixes per-device keys with "_" (``_@user:server_DEVICE_m.call``); only the
MSC3757/MSC3779 room versions (which we do not offer) own ``@user:server_...`` keys.
Element Web lets every member send call.member (level 0) in rooms with group calls.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.support.calls import delay_id_of, delayed_state, manage, scheduled, wait_for
from tests.support.client import Client
from tests.support.rooms import create_room, get_state, invite, join, new_user, put_state
from tests.support.server import RunningServer

MEMBER_TYPES = ["org.matrix.msc3401.call.member", "m.rtc.member"]
#: Element Web's power levels for rooms with group calls (feature_group_calls).
ELEMENT_CALL_LEVELS = {"events": {"org.matrix.msc3401.call.member": 0, "m.rtc.member": 0,
                                  "org.matrix.msc3401.call": 100}}


def membership(user: Client) -> dict[str, Any]:
    return {"application": "m.call", "call_id": "", "scope": "m.room", "device_id": user.device_id,
            "expires": 14_400_000, "focus_active": {"type": "livekit", "focus_selection": "oldest_membership"},
            "foci_preferred": [{"type": "livekit", "livekit_service_url": "https://livekit.example.org"}]}


def device_key(user: Client) -> str:
    return f"_{user.user_id}_{user.device_id}_m.call"


def call_room(server: RunningServer, levels: dict[str, Any] | None = ELEMENT_CALL_LEVELS
              ) -> tuple[Client, Client, str]:
    owner, member = new_user(server.base_url), new_user(server.base_url)
    body: dict[str, Any] = {"preset": "private_chat"}
    if levels is not None:
        body["power_level_content_override"] = levels
    room_id = create_room(owner, **body)
    invite(owner, room_id, str(member.user_id))
    join(member, room_id)
    return owner, member, room_id


@pytest.mark.parametrize("event_type", MEMBER_TYPES)
def test_a_member_sets_their_own_call_membership(server: RunningServer, event_type: str) -> None:
    owner, member, room_id = call_room(server)
    content = membership(member)
    assert put_state(member, room_id, event_type, content, device_key(member)).status == 200
    assert get_state(owner, room_id, event_type, device_key(member)).body == content
    # The legacy per-user form: state key equal to the sender.
    assert put_state(member, room_id, event_type, {"memberships": []}, str(member.user_id)).status == 200
    # "@..." keys other than the sender's own ID are refused by the auth rules, as in Synapse.
    for key in (f"{member.user_id}_{member.device_id}_m.call", str(owner.user_id)):
        response = put_state(member, room_id, event_type, content, key)
        assert response.status == 403 and response.errcode == "M_FORBIDDEN", (key, response)


def test_without_element_call_levels_members_may_not_join_calls(server: RunningServer) -> None:
    _, member, room_id = call_room(server, levels=None)
    response = put_state(member, room_id, "org.matrix.msc3401.call.member", membership(member), device_key(member))
    assert response.status == 403 and response.errcode == "M_FORBIDDEN"


DELAY_MS = 3000


def test_element_call_leave_on_disconnect(delayed_server: RunningServer) -> None:
    """Element Call's order: schedule the delayed leave, join, keep restarting it; then vanish."""
    owner, member, room_id = call_room(delayed_server)
    event_type, key = "org.matrix.msc3401.call.member", device_key(member)
    leave = delay_id_of(delayed_state(member, room_id, event_type, key, {}, DELAY_MS))
    assert put_state(member, room_id, event_type, membership(member), key).status == 200
    for _ in range(3):
        restarted = time.monotonic()
        assert manage(member, leave, "restart", token=False).status == 200
        body = get_state(owner, room_id, event_type, key).body
        alive = leave in scheduled(member)
        # Only a leave before its delay is a fault; a loaded machine may take longer than the delay.
        if time.monotonic() - restarted < DELAY_MS / 1000:
            # Our own join did not cancel our own delayed leave, and each restart holds it off.
            assert body == membership(member) and alive
    # Now the heartbeats stop.
    wait_for(lambda: get_state(owner, room_id, event_type, key).body == {}, "the delayed leave")
    assert scheduled(member) == {}
