"""A server ACL (m.room.server_acl) that cuts a third, scripted server off a room shared by
two Vignette servers (issue 14, "Server ACLs"): its PDUs and EDUs are dropped, every
room-scoped request it makes is 403, and nothing of the room is sent to it any more; the
allowed server goes on as before."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import pytest

from homeserver.signing_key import read_signing_keys
from tests.support.client import q
from tests.support.fed_pair import Pair
from tests.support.fed_sender import RecordingPeer
from tests.support.federation import FederationNet
from tests.support.federation_rooms import (
    FED,
    event_id_of,
    make_path,
    peer_join,
    sign_template,
    sync_token,
    sync_until,
    timeline_bodies,
)
from tests.support.rooms import V3, create_room, get_state, new_user, put_state, send_message
from tests.support.server import RunningServer

PAIR_PREFIX = "acl"


@pytest.fixture(scope="module")
def servers(pair: Pair) -> tuple[RunningServer, RunningServer]:
    return pair.a, pair.b


def recording_peer(fednet: FederationNet, server: RunningServer) -> RecordingPeer:
    keys = {e.key_id: e.key.verify_key for e in read_signing_keys(server.config["signing_key_path"])}
    return RecordingPeer(fednet, lambda: keys, lambda: server.server_name)


def wait_for(predicate: Any, what: str) -> None:
    for _ in range(100):
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(what)


def test_an_acl_cuts_off_a_third_server(servers: tuple[RunningServer, RunningServer], fednet: FederationNet) -> None:
    a, b = servers
    recorder = recording_peer(fednet, a)
    peer = recorder.scripted
    try:
        alice, bob = new_user(a.base_url), new_user(b.base_url)
        room_id = create_room(alice, preset="public_chat")
        version = get_state(alice, room_id, "m.room.create").body.get("room_version", "1")
        assert bob.post(f"{V3}/join/{q(room_id)}", {}, params={"via": a.server_name}).status == 200
        mallory = f"@mallory:{peer.server_name}"
        assert peer_join(peer, a, room_id, mallory).status_code == 200
        send_message(alice, room_id, "before the ACL")
        wait_for(lambda: any(e.content.get("body") == "before the ACL" for e in recorder.events(version)),
                 "the peer never got the message sent before the ACL")

        acl = {"allow": ["*"], "deny": [peer.server_name.split(":")[0]], "allow_ip_literals": False}
        assert put_state(alice, room_id, "m.room.server_acl", acl).status == 200
        since = sync_token(bob)
        send_message(alice, room_id, "after the ACL")
        sync_until(bob, lambda body: "after the ACL" in timeline_bodies(body, room_id), since)

        # Room-scoped requests from the denied server: 403.
        quoted = quote(room_id, safe="")
        for method, path, body in (
            ("GET", make_path("join", room_id, f"@other:{peer.server_name}") + f"?ver={version}", None),
            ("GET", make_path("leave", room_id, mallory), None),
            ("GET", f"{FED}/v1/state_ids/{quoted}?event_id=x", None),
            ("GET", f"{FED}/v1/backfill/{quoted}?v=x&limit=10", None),
            ("POST", f"{FED}/v1/get_missing_events/{quoted}", {"earliest_events": [], "latest_events": []}),
            ("PUT", f"{FED}/v2/invite/{quoted}/$x", {"room_version": version, "event": {}}),
        ):
            response = peer.request(method, a, path, body)
            assert (response.status_code, response.json().get("errcode")) == (403, "M_FORBIDDEN"), (path, response.text)

        # Its PDUs are refused, its EDUs dropped.
        made = peer.request("GET", a, make_path("leave", room_id, mallory))
        assert made.status_code == 403
        pdu = sign_template(peer, {"room_id": room_id, "type": "m.room.message", "sender": mallory,
                                   "content": {"msgtype": "m.text", "body": "from a denied server"},
                                   "depth": 100, "prev_events": [], "auth_events": []}, version)
        typing = {"edu_type": "m.typing", "content": {"room_id": room_id, "user_id": mallory, "typing": True}}
        txn = {"origin": peer.server_name, "origin_server_ts": int(time.time() * 1000), "pdus": [pdu],
               "edus": [typing]}
        sent = peer.request("PUT", a, f"{FED}/v1/send/acl{time.time_ns()}", txn)
        assert sent.status_code == 200, sent.text
        assert "error" in sent.json()["pdus"][event_id_of(pdu, version)]
        messages = alice.get(f"{V3}/rooms/{q(room_id)}/messages", params={"dir": "b", "limit": 20}).body["chunk"]
        assert "from a denied server" not in [m["content"].get("body") for m in messages]
        body = alice.get(f"{V3}/sync").body
        typing_now = [e for e in body["rooms"]["join"][room_id]["ephemeral"]["events"] if e["type"] == "m.typing"]
        assert all(mallory not in e["content"]["user_ids"] for e in typing_now)

        # Nothing of the room goes to the denied server any more.
        send_message(alice, room_id, "still not for the peer")
        sync_until(bob, lambda body: "still not for the peer" in timeline_bodies(body, room_id), since)
        bodies = [e.content.get("body") for e in recorder.events(version)]
        assert "before the ACL" in bodies
        assert "after the ACL" not in bodies and "still not for the peer" not in bodies
    finally:
        recorder.stop()
