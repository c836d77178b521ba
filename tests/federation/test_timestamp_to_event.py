"""GET /_matrix/federation/v1/timestamp_to_event/{roomId}: jump to a date for a peer in the room,
with the history its users could see."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.support.fed_rooms import PeerRoom, peer_user
from tests.support.federation import ScriptedPeer
from tests.support.rooms import new_user, send_message
from tests.support.server import RunningServer

V1 = "/_matrix/federation/v1"


def jump(peer: ScriptedPeer, server: RunningServer, room_id: str, query: str) -> Any:
    return peer.request("GET", server, f"{V1}/timestamp_to_event/{quote(room_id, safe='')}?{query}")


def test_timestamp_to_event_over_federation(peer: ScriptedPeer, fed_server: RunningServer) -> None:
    owner = new_user(fed_server.base_url)
    room = PeerRoom.create(peer, fed_server, owner,
                           initial_state=[{"type": "m.room.history_visibility", "state_key": "",
                                           "content": {"history_visibility": "joined"}}])
    outside = jump(peer, fed_server, room.room_id, "ts=0&dir=f")
    assert (outside.status_code, outside.json()["errcode"]) == (403, "M_FORBIDDEN")
    before = send_message(owner, room.room_id, "before you came")
    room.sync_from(owner)
    join = room.join(peer_user(peer))
    assert room.send([join]) == {join.event_id: {}}
    after = send_message(owner, room.room_id, "after you came")
    latest = jump(peer, fed_server, room.room_id, f"ts={2**50}&dir=b")
    assert latest.status_code == 200, latest.text
    assert latest.json()["event_id"] == after and isinstance(latest.json()["origin_server_ts"], int)
    # The peer's users could not see what came before their join: never the answer.
    event = owner.get(f"/_matrix/client/v3/rooms/{quote(room.room_id, safe='')}/event/{quote(before, safe='')}")
    before_ts = event.body["origin_server_ts"]
    assert jump(peer, fed_server, room.room_id, f"ts={before_ts}&dir=b").json()["event_id"] != before
    first = jump(peer, fed_server, room.room_id, f"ts={before_ts}&dir=f")
    assert first.status_code == 200 and first.json()["event_id"] != before
    for query, errcode in (("dir=f", "M_MISSING_PARAM"), ("ts=1&dir=x", "M_INVALID_PARAM"),
                           ("ts=abc&dir=b", "M_INVALID_PARAM")):
        bad = jump(peer, fed_server, room.room_id, query)
        assert (bad.status_code, bad.json()["errcode"]) == (400, errcode), query
    unknown = jump(peer, fed_server, "!unknown:" + fed_server.server_name, "ts=0&dir=f")
    assert unknown.status_code == 404
