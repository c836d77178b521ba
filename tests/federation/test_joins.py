"""Joins over federation with the scripted peer, both ways: the peer's users joining (and
leaving) our rooms through make_join/send_join, and our users joining the peer's room."""

from __future__ import annotations

from typing import Any

import nacl.signing
import requests

from homeserver.events.builder import ServerSigningKey, build_event
from homeserver.events.redaction import redact_pdu
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.events.signing import verify_json_signature
from homeserver.signing_key import read_signing_keys
from tests.support.client import Client, q
from tests.support.federation import ScriptedPeer
from tests.support.federation_rooms import (
    PeerRoom,
    event_id_of,
    make_path,
    peer_join,
    send_path,
    sign_template,
)
from tests.support.rooms import V3, create_room, get_state, joined_members, new_user, put_state
from tests.support.server import RunningServer

ALL_VERSIONS = "&".join(f"ver={v}" for v in KNOWN_ROOM_VERSIONS)


def template_for(peer: ScriptedPeer, server: RunningServer, room_id: str, user_id: str,
                 kind: str = "join") -> tuple[str, dict[str, Any]]:
    query = f"?{ALL_VERSIONS}" if kind == "join" else ""
    made = peer.request("GET", server, make_path(kind, room_id, user_id) + query)
    assert made.status_code == 200, made.text
    return made.json()["room_version"], made.json()["event"]


def send(peer: ScriptedPeer, server: RunningServer, kind: str, room_id: str, pdu: dict[str, Any],
         version: str, api: int = 2) -> requests.Response:
    return peer.request("PUT", server, send_path(kind, room_id, event_id_of(pdu, version), api), pdu)


# -- the peer's users in our rooms -----------------------------------------------------------

def test_a_remote_user_joins_our_room(fed_server: RunningServer, peer: ScriptedPeer) -> None:
    alice = new_user(fed_server.base_url)
    room_id = create_room(alice, preset="public_chat")
    user = f"@pat:{peer.server_name}"
    version, template = template_for(peer, fed_server, room_id, user)
    assert (template["type"], template["sender"], template["state_key"]) == ("m.room.member", user, user)
    assert template["content"]["membership"] == "join" and template["room_id"] == room_id
    pdu = sign_template(peer, template, version)
    response = send(peer, fed_server, "join", room_id, pdu, version)
    assert response.status_code == 200, response.text
    answer = response.json()
    state_types = {(e["type"], e.get("state_key")) for e in answer["state"]}
    assert ("m.room.create", "") in state_types and ("m.room.member", alice.user_id) in state_types
    assert ("m.room.member", user) not in state_types  # the state *before* the join
    assert {e["type"] for e in answer["auth_chain"]} >= {"m.room.create", "m.room.power_levels"}
    assert answer["origin"] == fed_server.server_name
    assert fed_server.server_name in answer["servers_in_room"]
    assert joined_members(alice, room_id) == {alice.user_id, user}
    # Sending it again changes nothing.
    assert send(peer, fed_server, "join", room_id, pdu, version).status_code == 200
    # The peer user leaves again, through make_leave/send_leave.
    version, template = template_for(peer, fed_server, room_id, user, "leave")
    assert template["content"] == {"membership": "leave"}
    left = send(peer, fed_server, "leave", room_id, sign_template(peer, template, version), version)
    assert (left.status_code, left.json()) == (200, {})
    assert joined_members(alice, room_id) == {alice.user_id}


def test_send_join_v1_answers_in_the_old_shape(fed_server: RunningServer, peer: ScriptedPeer) -> None:
    alice = new_user(fed_server.base_url)
    room_id = create_room(alice, preset="public_chat")
    user = f"@old:{peer.server_name}"
    version, template = template_for(peer, fed_server, room_id, user)
    response = send(peer, fed_server, "join", room_id, sign_template(peer, template, version), version, api=1)
    assert response.status_code == 200, response.text
    code, body = response.json()
    assert code == 200 and {"state", "auth_chain"} <= set(body)
    assert user in joined_members(alice, room_id)


def test_make_join_checks_the_room_version(fed_server: RunningServer, peer: ScriptedPeer) -> None:
    alice = new_user(fed_server.base_url)
    room_id = create_room(alice, preset="public_chat", room_version="10")
    user = f"@v:{peer.server_name}"
    for query in ("", "?ver=1&ver=2", "?ver=11"):  # no ver means version 1 only
        response = peer.request("GET", fed_server, make_path("join", room_id, user) + query)
        assert response.status_code == 400, response.text
        assert response.json()["errcode"] == "M_INCOMPATIBLE_ROOM_VERSION"
        assert response.json()["room_version"] == "10"
    assert peer.request("GET", fed_server, make_path("join", room_id, user) + "?ver=10").status_code == 200


def test_send_join_refuses_anything_but_the_origins_own_join(fed_server: RunningServer,
                                                              peer: ScriptedPeer) -> None:
    alice = new_user(fed_server.base_url)
    room_id = create_room(alice, preset="public_chat")
    user = f"@mallory:{peer.server_name}"
    # make_join for a user of another server
    other = peer.request("GET", fed_server, make_path("join", room_id, alice.user_id) + f"?{ALL_VERSIONS}")
    assert (other.status_code, other.json()["errcode"]) == (403, "M_FORBIDDEN")
    version, template = template_for(peer, fed_server, room_id, user)
    cases = {
        "leave instead of join": (dict(content={"membership": "leave"}), 400),
        "a message": (dict(type="m.room.message", content={"body": "hi"}), 400),
        "someone else's membership": (dict(state_key=f"@victim:{peer.server_name}"), 400),
        "a user of another server": (dict(sender=alice.user_id, state_key=alice.user_id), 403),
    }
    for name, (changes, status) in cases.items():
        pdu = sign_template(peer, template, version, **changes)
        response = send(peer, fed_server, "join", room_id, pdu, version)
        assert response.status_code == status, (name, response.text)
    good = sign_template(peer, template, version)
    wrong_path = peer.request("PUT", fed_server, send_path("join", room_id, "$notthisone"), good)
    assert wrong_path.status_code == 400
    tampered = dict(good, content={"membership": "join", "displayname": "changed after signing"})
    assert send(peer, fed_server, "join", room_id, tampered, version).status_code in (400, 403)
    assert peer.request("PUT", fed_server, send_path("join", room_id, "$x"), raw_body=b"{nope").status_code == 400
    unknown = peer.request("GET", fed_server, make_path("join", "!nowhere:" + fed_server.server_name, user)
                           + f"?{ALL_VERSIONS}")
    assert (unknown.status_code, unknown.json()["errcode"]) == (404, "M_NOT_FOUND")
    assert joined_members(alice, room_id) == {alice.user_id}


def test_a_banned_user_is_refused(fed_server: RunningServer, peer: ScriptedPeer) -> None:
    alice = new_user(fed_server.base_url)
    room_id = create_room(alice, preset="public_chat")
    user = f"@banned:{peer.server_name}"
    version, template = template_for(peer, fed_server, room_id, user)  # taken before the ban
    response = alice.post(f"{V3}/rooms/{q(room_id)}/ban", {"user_id": user, "reason": "spam"})
    assert response.status == 200, response
    made = peer.request("GET", fed_server, make_path("join", room_id, user) + f"?{ALL_VERSIONS}")
    assert (made.status_code, made.json()["errcode"]) == (403, "M_FORBIDDEN")
    sent = send(peer, fed_server, "join", room_id, sign_template(peer, template, version), version)
    assert (sent.status_code, sent.json()["errcode"]) == (403, "M_FORBIDDEN")
    assert joined_members(alice, room_id) == {alice.user_id}


def our_verify_keys(server: RunningServer) -> dict[str, Any]:
    return {e.key_id: e.key.verify_key for e in read_signing_keys(server.config["signing_key_path"])}


def test_restricted_room_checks_allow_and_vouches(fed_server: RunningServer, peer: ScriptedPeer) -> None:
    alice = new_user(fed_server.base_url)
    space = create_room(alice, preset="public_chat")
    room_id = create_room(alice, preset="private_chat", room_version="10")
    rules = {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": space}]}
    assert put_state(alice, room_id, "m.room.join_rules", rules).status == 200
    user = f"@member:{peer.server_name}"
    refused = peer.request("GET", fed_server, make_path("join", room_id, user) + f"?{ALL_VERSIONS}")
    assert refused.status_code == 403, refused.text
    assert peer_join(peer, fed_server, space, user).status_code == 200  # now in the allowed room
    version, template = template_for(peer, fed_server, room_id, user)
    assert template["content"]["join_authorised_via_users_server"] == alice.user_id
    response = send(peer, fed_server, "join", room_id, sign_template(peer, template, version), version)
    assert response.status_code == 200, response.text
    signed = response.json()["event"]
    redacted = redact_pdu(signed, KNOWN_ROOM_VERSIONS[version])
    verify_json_signature(redacted, fed_server.server_name, our_verify_keys(fed_server))
    assert user in joined_members(alice, room_id)


# -- our users in the peer's room ------------------------------------------------------------

def join_remote(client: Client, room: str, *servers: str) -> Any:
    params = {"server_name": list(servers)} if servers else None
    return client.post(f"{V3}/join/{q(room)}", {}, params=params)


def test_we_join_the_peers_room(fed_server: RunningServer, peer: ScriptedPeer) -> None:
    room = PeerRoom(peer)
    topic = room.add("m.room.topic", {"topic": "the peer's room"}, "")
    bob = new_user(fed_server.base_url)
    room.serve_join(bob.user_id)
    # An event with a bad signature in the answer is dropped, and the join goes on.
    stranger = ServerSigningKey(peer.server_name, peer.key.key_id, nacl.signing.SigningKey.generate())
    forged = build_event(room_version=room.version, event_type="m.room.name", sender=room.creator,
                         content={"name": "forged"}, room_id=room.room_id, state_key="",
                         prev_event_ids=[topic.event_id], auth_event_ids=room.auth_for(room.creator, "x", None),
                         depth=10, origin_server_ts=topic.origin_server_ts, key=stranger)
    room.tamper.append(forged.pdu)
    response = join_remote(bob, room.room_id, peer.server_name)
    assert response.status == 200, response
    assert response.body == {"room_id": room.room_id}
    (joined,) = room.joins
    assert joined["sender"] == bob.user_id and joined["content"]["membership"] == "join"
    verify_json_signature(redact_pdu(joined, KNOWN_ROOM_VERSIONS["10"]), fed_server.server_name,
                          our_verify_keys(fed_server))
    assert get_state(bob, room.room_id, "m.room.topic").body == topic.content
    assert get_state(bob, room.room_id, "m.room.name").status == 404
    assert joined_members(bob, room.room_id) == {room.creator, bob.user_id}
    joined_rooms = bob.get(f"{V3}/joined_rooms").body["joined_rooms"]
    assert room.room_id in joined_rooms
    sync = bob.get(f"{V3}/sync").body
    assert room.room_id in sync["rooms"]["join"]


def test_join_falls_back_to_the_next_server_and_by_alias(fed_server: RunningServer, peer: ScriptedPeer,
                                                         fednet: Any) -> None:
    room = PeerRoom(peer)
    bob = new_user(fed_server.base_url)
    room.serve_join(bob.user_id)
    other = ScriptedPeer(fednet)  # answers nothing but its keys: 404 for make_join
    try:
        alias = f"#lobby:{peer.server_name}"
        room.serve_alias(alias)
        response = join_remote(bob, alias, other.server_name, "dead.invalid")
        assert response.status == 200, response
        assert response.body["room_id"] == room.room_id
        assert any("/make_join/" in path for _m, path, _h in other.http.hits)
        assert len(room.joins) == 1
    finally:
        other.stop()


def test_joining_through_servers_not_in_the_room_fails_cleanly(fed_server: RunningServer,
                                                               peer: ScriptedPeer) -> None:
    bob = new_user(fed_server.base_url)
    room_id = f"!absent:{peer.server_name}"
    response = join_remote(bob, room_id, peer.server_name)
    assert (response.status, response.errcode) == (404, "M_NOT_FOUND")
    peer.http.routes[("GET", make_path("join", room_id, bob.user_id))] = lambda _r: (
        403, {"errcode": "M_FORBIDDEN", "error": "You are not invited"})
    refused = join_remote(bob, room_id, peer.server_name)
    assert (refused.status, refused.errcode) == (403, "M_FORBIDDEN")
    assert "not invited" in refused.body["error"]
    junk = f"!junk:{peer.server_name}"
    peer.http.routes[("GET", make_path("join", junk, bob.user_id))] = lambda _r: (200, b"not json")
    bad = join_remote(bob, junk, peer.server_name)
    assert (bad.status, bad.errcode) == (404, "M_NOT_FOUND")
    missing_alias = join_remote(bob, f"#nothing:{peer.server_name}")
    assert (missing_alias.status, missing_alias.errcode) == (404, "M_NOT_FOUND")
