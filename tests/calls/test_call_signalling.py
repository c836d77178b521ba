"""1:1 call signalling (m.call.*) are ordinary room events: a whole call's worth travels
from the caller to the callee's WebSocket stream and /sync, in order and unchanged, and
the callee's answers sent over its socket reach the caller."""

from __future__ import annotations

import secrets
from typing import Any

from tests.support.client import Client, register_user
from tests.support.rooms import V3
from tests.support.server import RunningServer
from tests.support.sync import StreamClient, shared_room, sync, timeline_events

BIG_TIMELINE = {"room": {"timeline": {"limit": 100}}}
CALL_ID = "call-" + secrets.token_hex(4)
OFFER = {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"}


def caller_events(party_id: str) -> list[tuple[str, dict[str, Any]]]:
    common = {"call_id": CALL_ID, "party_id": party_id, "version": "1"}
    return [
        ("m.call.invite", {**common, "lifetime": 60000, "offer": OFFER, "invitee": None}),
        ("m.call.candidates", {**common, "candidates": [
            {"candidate": "candidate:1 1 UDP 2130706431 127.0.0.1 50000 typ host", "sdpMid": "0",
             "sdpMLineIndex": 0}]}),
        ("m.call.select_answer", {**common, "selected_party_id": "callee-party"}),
        ("m.call.negotiate", {**common, "lifetime": 10000, "description": {**OFFER, "sdp": OFFER["sdp"] + "a=x\r\n"}}),
        ("m.call.hangup", {**common, "reason": "user_hangup"}),
    ]


def callee_events() -> list[tuple[str, dict[str, Any]]]:
    common = {"call_id": CALL_ID, "party_id": "callee-party", "version": "1"}
    return [
        ("m.call.answer", {**common, "answer": {"type": "answer", "sdp": "v=0\r\n"}}),
        ("m.call.reject", {**common}),
    ]


def send(client: Client, room_id: str, event_type: str, content: dict[str, Any]) -> str:
    response = client.put(f"{V3}/rooms/{room_id}/send/{event_type}/{secrets.token_hex(6)}", content)
    assert response.status == 200, response
    return str(response.body["event_id"])


def calls_in(stream: StreamClient, room_id: str, count: int) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    while len(seen) < count:
        seen.extend(e for e in timeline_events(stream.next_frame(), room_id) if e["type"].startswith("m.call."))
    return seen


def test_a_call_travels_over_the_stream_and_sync(server: RunningServer) -> None:
    caller, callee = register_user(server.base_url), register_user(server.base_url)
    room_id = shared_room(caller, callee)
    caller_since = sync(caller, sync_filter=BIG_TIMELINE)["next_batch"]
    callee_since = sync(callee, sync_filter=BIG_TIMELINE)["next_batch"]
    callee_stream = StreamClient.connect(callee, since=callee_since, sync_filter=BIG_TIMELINE)
    caller_stream = StreamClient.connect(caller, since=caller_since, sync_filter=BIG_TIMELINE)

    sent = caller_events("caller-party")
    ids = [send(caller, room_id, event_type, content) for event_type, content in sent]
    received = calls_in(callee_stream, room_id, len(sent))
    assert [e["event_id"] for e in received] == ids
    assert [(e["type"], e["content"]) for e in received] == sent
    assert all(e["sender"] == caller.user_id for e in received)

    # The callee answers over its own socket; the caller's stream hears it.
    answers = callee_events()
    for event_type, content in answers:
        reply = callee_stream.request("send", room_id=room_id, event_type=event_type,
                                      txn_id=secrets.token_hex(6), content=content)
        assert reply["type"] == "response", reply
    heard = [e for e in calls_in(caller_stream, room_id, len(sent) + len(answers))
             if e["sender"] == callee.user_id]
    assert [(e["type"], e["content"]) for e in heard] == answers

    # /sync has the same events in the same order.
    via_sync = [e for e in timeline_events(sync(callee, callee_since, sync_filter=BIG_TIMELINE), room_id)
                if e["type"].startswith("m.call.")]
    assert [(e["type"], e["content"]) for e in via_sync] == sent + answers
    callee_stream.close()
    caller_stream.close()


def test_call_invites_are_refused_in_public_rooms(server: RunningServer) -> None:
    """As Synapse does: an invite in a public room would ring everyone who joins it."""
    caller = register_user(server.base_url)
    response = caller.post(f"{V3}/createRoom", {"preset": "public_chat"})
    room_id = response.body["room_id"]
    event_type, content = caller_events("caller-party")[0]
    refused = caller.put(f"{V3}/rooms/{room_id}/send/{event_type}/{secrets.token_hex(6)}", content)
    assert refused.status == 403 and refused.errcode == "M_FORBIDDEN"
    # The rest of the signalling is not an invitation to anyone.
    send(caller, room_id, "m.call.hangup", {"call_id": CALL_ID, "party_id": "p", "version": "1"})
    assert caller.put(f"{V3}/rooms/{room_id}/state/m.room.join_rules/", {"join_rule": "invite"}).status == 200
    send(caller, room_id, event_type, content)
