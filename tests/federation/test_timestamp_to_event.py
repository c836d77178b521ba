"""``/timestamp_to_event``: the client API (v1) and the federation API, with their checks."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from tests.support.client import q
from tests.support.federation import ScriptedPeer
from tests.support.federation_rooms import FED, peer_join
from tests.support.rooms import create_room, messages, new_user, send_message
from tests.support.server import RunningServer

V1 = "/_matrix/client/v1"


def three_messages(server: RunningServer) -> tuple[Any, str, list[dict[str, Any]]]:
    alice = new_user(server.base_url)
    room_id = create_room(alice, preset="public_chat")
    for i in range(3):
        send_message(alice, room_id, f"m{i}")
        time.sleep(0.01)
    chunk = messages(alice, room_id, dir="b", limit=3)["chunk"]
    return alice, room_id, list(reversed(chunk))


def test_the_client_api_finds_the_nearest_event(fed_server: RunningServer) -> None:
    alice, room_id, (m0, m1, m2) = three_messages(fed_server)
    path = f"{V1}/rooms/{q(room_id)}/timestamp_to_event"
    forward = alice.get(path, params={"ts": int(m0["origin_server_ts"]) + 1, "dir": "f"})
    assert forward.status == 200, forward
    assert forward.body == {"event_id": m1["event_id"], "origin_server_ts": m1["origin_server_ts"]}
    backward = alice.get(path, params={"ts": int(m2["origin_server_ts"]) - 1, "dir": "b"})
    assert backward.body["event_id"] == m1["event_id"]
    exact = alice.get(path, params={"ts": m2["origin_server_ts"], "dir": "b"})
    assert exact.body["event_id"] == m2["event_id"]
    after_all = alice.get(path, params={"ts": int(m2["origin_server_ts"]) + 60_000, "dir": "f"})
    assert (after_all.status, after_all.errcode) == (404, "M_NOT_FOUND")
    for params, errcode in (({"dir": "f"}, "M_MISSING_PARAM"), ({"ts": "1"}, "M_MISSING_PARAM"),
                            ({"ts": "x", "dir": "f"}, "M_INVALID_PARAM"), ({"ts": "1", "dir": "up"}, "M_INVALID_PARAM"),
                            ({"ts": "-5", "dir": "f"}, "M_INVALID_PARAM")):
        bad = alice.get(path, params=params)
        assert (bad.status, bad.errcode) == (400, errcode), (params, bad)
    stranger = new_user(fed_server.base_url)
    hidden = stranger.get(path, params={"ts": 0, "dir": "f"})
    assert (hidden.status, hidden.errcode) == (403, "M_FORBIDDEN")


def test_the_federation_api_answers_servers_in_the_room(fed_server: RunningServer, peer: ScriptedPeer) -> None:
    _alice, room_id, (m0, m1, _m2) = three_messages(fed_server)
    path = f"{FED}/v1/timestamp_to_event/{quote(room_id, safe='')}?ts={int(m0['origin_server_ts']) + 1}&dir=f"
    outside = peer.request("GET", fed_server, path)
    assert (outside.status_code, outside.json()["errcode"]) == (403, "M_FORBIDDEN"), outside.text
    assert peer_join(peer, fed_server, room_id, f"@pat:{peer.server_name}").status_code == 200
    inside = peer.request("GET", fed_server, path)
    assert inside.status_code == 200, inside.text
    assert inside.json() == {"event_id": m1["event_id"], "origin_server_ts": m1["origin_server_ts"]}
    bad = peer.request("GET", fed_server, path.replace("dir=f", "dir=x"))
    assert (bad.status_code, bad.json()["errcode"]) == (400, "M_INVALID_PARAM")
    unknown = peer.request("GET", fed_server, f"{FED}/v1/timestamp_to_event/{quote('!nope:x', safe='')}?ts=1&dir=f")
    assert (unknown.status_code, unknown.json()["errcode"]) == (404, "M_NOT_FOUND")
    unsigned = peer.request("GET", fed_server, path, authorization=False)
    assert unsigned.status_code == 401
