"""Serving a room's events to a peer in it: /event, /state, /state_ids, /event_auth,
/get_missing_events and /backfill, with server ACLs and the history its users could see."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests

from tests.support.client import Client, q
from tests.support.fed_rooms import PeerRoom, peer_user
from tests.support.federation import FederationNet, ScriptedPeer
from tests.support.rooms import send_message
from tests.support.server import RunningServer

V1 = "/_matrix/federation/v1"
V3 = "/_matrix/client/v3"


@pytest.fixture
def stranger(fednet: FederationNet) -> Iterator[ScriptedPeer]:
    other = ScriptedPeer(fednet)
    try:
        yield other
    finally:
        other.stop()


@pytest.fixture
def scene(peer: ScriptedPeer, fed_server: RunningServer, owner: Client) -> dict[str, Any]:
    """A room whose history is for joined members: one message before the peer's user joined, one after."""
    room = PeerRoom.create(peer, fed_server, owner,
                           initial_state=[{"type": "m.room.history_visibility", "state_key": "",
                                           "content": {"history_visibility": "joined"}}])
    before = send_message(owner, room.room_id, "before you came")
    room.sync_from(owner)
    user = peer_user(peer)
    join = room.join(user)
    assert room.send([join]) == {join.event_id: {}}
    after = send_message(owner, room.room_id, "after you came")
    return {"room": room, "before": before, "after": after, "join": join.event_id, "user": user}


def get(peer: ScriptedPeer, server: RunningServer, uri: str) -> Any:
    return peer.request("GET", server, uri)


def test_event(scene: dict[str, Any], fed_server: RunningServer, peer: ScriptedPeer) -> None:
    room: PeerRoom = scene["room"]
    response = get(peer, fed_server, f"{V1}/event/{quote(scene['after'], safe='')}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["origin"] == fed_server.server_name
    (pdu,) = body["pdus"]
    assert pdu["content"]["body"] == "after you came" and pdu["room_id"] == room.room_id
    # Its users were not joined when this was sent, and the room's history is for joined members.
    hidden = get(peer, fed_server, f"{V1}/event/{quote(scene['before'], safe='')}")
    assert (hidden.status_code, hidden.json()["errcode"]) == (404, "M_NOT_FOUND")
    unknown = get(peer, fed_server, f"{V1}/event/{quote('$nothing-here', safe='')}")
    assert unknown.status_code == 404


def test_backfill_redacts_what_the_server_may_not_see(scene: dict[str, Any], fed_server: RunningServer,
                                                      peer: ScriptedPeer) -> None:
    room: PeerRoom = scene["room"]
    uri = f"{V1}/backfill/{quote(room.room_id, safe='')}?v={quote(scene['after'], safe='')}&limit=50"
    response = get(peer, fed_server, uri)
    assert response.status_code == 200, response.text
    pdus = response.json()["pdus"]
    by_body = {p["content"].get("body"): p for p in pdus if p["type"] == "m.room.message"}
    assert "after you came" in by_body
    assert "before you came" not in by_body
    messages = [p for p in pdus if p["type"] == "m.room.message"]
    assert len(messages) == 2 and any(p["content"] == {} for p in messages)  # the early one, redacted
    assert [p["depth"] for p in pdus] == sorted((p["depth"] for p in pdus), reverse=True)
    assert pdus[-1]["type"] == "m.room.create"
    limited = get(peer, fed_server, uri.replace("limit=50", "limit=2")).json()["pdus"]
    assert len(limited) == 2


def test_state_ids_state_and_event_auth(scene: dict[str, Any], fed_server: RunningServer,
                                        peer: ScriptedPeer) -> None:
    room: PeerRoom = scene["room"]
    room_path = quote(room.room_id, safe="")
    response = get(peer, fed_server, f"{V1}/state_ids/{room_path}?event_id={quote(scene['after'], safe='')}")
    assert response.status_code == 200, response.text
    ids = response.json()
    assert scene["join"] in ids["pdu_ids"]
    assert room.state[("m.room.create", "")] in ids["pdu_ids"]
    assert not set(ids["pdu_ids"]) & set(ids["auth_chain_ids"])
    full = get(peer, fed_server, f"{V1}/state/{room_path}?event_id={quote(scene['after'], safe='')}").json()
    served = {room.remember_pdu(p) for p in full["pdus"]}
    assert served == set(ids["pdu_ids"])
    # The state before the join does not hold it.
    before_join = get(peer, fed_server, f"{V1}/state_ids/{room_path}?event_id={quote(scene['join'], safe='')}")
    assert scene["join"] not in before_join.json()["pdu_ids"]
    auth = get(peer, fed_server, f"{V1}/event_auth/{room_path}/{quote(scene['after'], safe='')}")
    assert auth.status_code == 200, auth.text
    auth_types = {(p["type"], p.get("state_key")) for p in auth.json()["auth_chain"]}
    assert ("m.room.create", "") in auth_types and ("m.room.power_levels", "") in auth_types


def test_get_missing_events(scene: dict[str, Any], fed_server: RunningServer, peer: ScriptedPeer,
                            owner: Client) -> None:
    room: PeerRoom = scene["room"]
    later = [send_message(owner, room.room_id, f"later {i}") for i in range(3)]
    body = {"earliest_events": [scene["join"]], "latest_events": [later[-1]], "limit": 10, "min_depth": 0}
    response = peer.request("POST", fed_server, f"{V1}/get_missing_events/{quote(room.room_id, safe='')}", body)
    assert response.status_code == 200, response.text
    got = [room.remember_pdu(p) for p in response.json()["events"]]
    assert got == [scene["after"], *later[:-1]]
    capped = peer.request("POST", fed_server, f"{V1}/get_missing_events/{quote(room.room_id, safe='')}",
                          {**body, "limit": 1}).json()["events"]
    assert [room.remember_pdu(p) for p in capped] == [later[-2]]


def test_who_may_ask(scene: dict[str, Any], fed_server: RunningServer, stranger: ScriptedPeer,
                     peer: ScriptedPeer, owner: Client) -> None:
    room: PeerRoom = scene["room"]
    room_path = quote(room.room_id, safe="")
    event = quote(scene["after"], safe="")
    for uri in (f"{V1}/state_ids/{room_path}?event_id={event}", f"{V1}/event/{event}",
                f"{V1}/backfill/{room_path}?v={event}&limit=5", f"{V1}/event_auth/{room_path}/{event}"):
        response = get(stranger, fed_server, uri)
        assert (response.status_code, response.json()["errcode"]) == (403, "M_FORBIDDEN"), uri
    acl = {"allow": ["*"], "deny": [peer.server_name.split(":")[0]], "allow_ip_literals": True}
    assert owner.put(f"{V3}/rooms/{q(room.room_id)}/state/m.room.server_acl/", acl).status == 200
    denied = get(peer, fed_server, f"{V1}/state_ids/{room_path}?event_id={event}")
    assert (denied.status_code, denied.json()["errcode"]) == (403, "M_FORBIDDEN")


@pytest.mark.parametrize("uri, status, errcode", [
    ("/state_ids/{room}", 400, "M_MISSING_PARAM"),
    ("/state_ids/{room}?event_id=%24nope", 404, "M_NOT_FOUND"),
    ("/state/{room}?event_id=%24nope", 404, "M_NOT_FOUND"),
    ("/state_ids/!unknown:nowhere.test?event_id=%24x", 404, "M_NOT_FOUND"),
    ("/state_ids/not-a-room?event_id=%24x", 400, "M_INVALID_PARAM"),
    ("/event_auth/{room}/%24nope", 404, "M_NOT_FOUND"),
    ("/backfill/{room}?limit=5", 400, "M_MISSING_PARAM"),
    ("/backfill/{room}?v=%24x&limit=many", 400, "M_INVALID_PARAM"),
    ("/backfill/{room}?v=%24x", 400, "M_MISSING_PARAM"),
])
def test_bad_requests(scene: dict[str, Any], fed_server: RunningServer, peer: ScriptedPeer, uri: str,
                      status: int, errcode: str) -> None:
    room: PeerRoom = scene["room"]
    response = get(peer, fed_server, V1 + uri.format(room=quote(room.room_id, safe="")))
    assert (response.status_code, response.json()["errcode"]) == (status, errcode), response.text


@pytest.mark.parametrize("body, errcode", [
    ([], "M_BAD_JSON"),
    ({}, "M_MISSING_PARAM"),
    ({"latest_events": "x"}, "M_BAD_JSON"),
    ({"latest_events": [1]}, "M_BAD_JSON"),
    ({"latest_events": [], "limit": "ten"}, "M_BAD_JSON"),
])
def test_bad_get_missing_events(scene: dict[str, Any], fed_server: RunningServer, peer: ScriptedPeer,
                                body: Any, errcode: str) -> None:
    room: PeerRoom = scene["room"]
    response = peer.request("POST", fed_server, f"{V1}/get_missing_events/{quote(room.room_id, safe='')}", body)
    assert (response.status_code, response.json()["errcode"]) == (400, errcode), response.text


def test_server_well_known_is_not_served_by_default(fed_server: RunningServer) -> None:
    response = requests.get(fed_server.base_url + "/.well-known/matrix/server", timeout=30)
    assert response.status_code == 404 and response.json()["errcode"] == "M_NOT_FOUND"
