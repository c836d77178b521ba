"""Inbound invites from the scripted peer (``PUT /invite`` v1 and v2): what we sign and
keep, what the invitee's sync shows, rejecting when the inviting server does not answer,
and bad input; plus knocks on our rooms from the peer (``make_knock``/``send_knock``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
import requests

from homeserver.events.redaction import redact_pdu
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.events.signing import verify_json_signature
from homeserver.signing_key import read_signing_keys
from tests.support.client import Client, q
from tests.support.federation import ScriptedPeer
from tests.support.federation_rooms import (
    FED,
    PeerRoom,
    event_id_of,
    make_path,
    peer_join,
    send_path,
    sign_template,
    sync_token,
    sync_until,
)
from tests.support.rooms import V3, create_room, get_state, new_user, put_state
from tests.support.server import RunningServer


def invite_path(room_id: str, event_id: str, version: int = 2) -> str:
    return f"{FED}/v{version}/invite/{quote(room_id, safe='')}/{quote(event_id, safe='')}"


def peer_invite(peer: ScriptedPeer, server: RunningServer, room: PeerRoom, user_id: str,
                version: int = 2) -> tuple[requests.Response, dict[str, Any]]:
    event = room.add("m.room.member", {"membership": "invite"}, user_id)
    stripped = [{"type": "m.room.name", "state_key": "", "content": {"name": "peer room"}, "sender": room.creator},
                {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "invite"},
                 "sender": room.creator}]
    if version == 2:
        body: dict[str, Any] = {"room_version": room.version.identifier, "event": event.pdu,
                                "invite_room_state": stripped}
    else:
        body = {**event.pdu, "unsigned": {"invite_room_state": stripped}}
    return peer.request("PUT", server, invite_path(room.room_id, event.event_id, version), body), event.pdu


def our_verify_keys(server: RunningServer) -> dict[str, Any]:
    return {e.key_id: e.key.verify_key for e in read_signing_keys(server.config["signing_key_path"])}


def invite_section(body: dict[str, Any], room_id: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = body.get("rooms", {}).get("invite", {}).get(room_id)
    return found


@pytest.mark.parametrize("room_version,api", [("10", 2), ("11", 2), ("1", 1), ("2", 1)])
def test_a_peer_invite_is_signed_kept_and_shown(fed_server: RunningServer, peer: ScriptedPeer,
                                                room_version: str, api: int) -> None:
    bob = new_user(fed_server.base_url)
    room = PeerRoom(peer, room_version, join_rule="invite")
    since = sync_token(bob)
    response, pdu = peer_invite(peer, fed_server, room, str(bob.user_id), api)
    assert response.status_code == 200, response.text
    answer = response.json()
    signed = answer["event"] if api == 2 else answer[1]["event"]
    assert api == 2 or answer[0] == 200
    assert set(signed["signatures"]) == {peer.server_name, fed_server.server_name}
    verify_json_signature(redact_pdu(signed, KNOWN_ROOM_VERSIONS[room_version]), fed_server.server_name,
                          our_verify_keys(fed_server))
    body = sync_until(bob, lambda b: invite_section(b, room.room_id) is not None, since)
    shown = {(e["type"], e["state_key"]): e for e in invite_section(body, room.room_id)["invite_state"]["events"]}  # type: ignore[index]
    assert shown[("m.room.name", "")]["content"] == {"name": "peer room"}
    assert shown[("m.room.member", bob.user_id)]["sender"] == room.creator
    # A second delivery of the same invite changes nothing.
    again = peer.request("PUT", fed_server, invite_path(room.room_id, event_id_of(pdu, room_version), api),
                         {"room_version": room_version, "event": pdu} if api == 2 else pdu)
    assert again.status_code == 200, again.text


def test_rejecting_when_the_inviting_server_does_not_answer(fed_server: RunningServer, peer: ScriptedPeer) -> None:
    """The peer serves no make_leave: the rejection is made here alone, and sync shows it."""
    bob = new_user(fed_server.base_url)
    room = PeerRoom(peer, "10", join_rule="invite")
    response, _ = peer_invite(peer, fed_server, room, str(bob.user_id))
    assert response.status_code == 200, response.text
    since = sync_token(bob)
    left = bob.post(f"{V3}/rooms/{q(room.room_id)}/leave", {})
    assert left.status == 200, left
    body = sync_until(bob, lambda b: room.room_id in b.get("rooms", {}).get("leave", {}), since)
    assert room.room_id not in body.get("rooms", {}).get("invite", {})
    fresh = bob.get(f"{V3}/sync").body
    assert room.room_id not in fresh.get("rooms", {}).get("invite", {})
    assert any(path.startswith(f"{FED}/v1/make_leave/") for _m, path, _h in peer.http.hits)


def test_accepting_a_peer_invite_joins_through_the_peer(fed_server: RunningServer, peer: ScriptedPeer) -> None:
    bob = new_user(fed_server.base_url)
    room = PeerRoom(peer, "10", join_rule="invite")
    response, _ = peer_invite(peer, fed_server, room, str(bob.user_id))
    assert response.status_code == 200, response.text
    room.serve_join(str(bob.user_id))
    joined = bob.post(f"{V3}/join/{q(room.room_id)}", {})
    assert joined.status == 200, (joined, fed_server.output()[-3000:])
    assert len(room.joins) == 1
    assert get_state(bob, room.room_id, "m.room.member", str(bob.user_id)).body["membership"] == "join"


def bad_invite(peer: ScriptedPeer, room: PeerRoom, target: str, **changes: Any) -> dict[str, Any]:
    event = room.add("m.room.member", {"membership": "invite"}, target)
    pdu = {k: v for k, v in event.pdu.items() if k not in ("signatures", "hashes")}
    pdu.update(changes)
    return sign_template(peer, pdu, room.version.identifier)


@pytest.mark.parametrize("case", ["unsigned", "other_sender_server", "not_our_user", "not_invite",
                                  "wrong_event_id", "unknown_user", "bad_version", "not_json", "missing_event"])
def test_bad_invites_are_refused(fed_server: RunningServer, peer: ScriptedPeer, case: str) -> None:
    bob = new_user(fed_server.base_url)
    room = PeerRoom(peer, "10", join_rule="invite")
    target = str(bob.user_id)
    version = room.version.identifier
    pdu = bad_invite(peer, room, target)
    event_id = event_id_of(pdu, version)
    body: Any = {"room_version": version, "event": pdu}
    raw: bytes | None = None
    expected = (400, "M_BAD_JSON")
    if case == "unsigned":
        body["event"] = {k: v for k, v in pdu.items() if k != "signatures"}
        expected = (403, "M_FORBIDDEN")
    elif case == "other_sender_server":
        body["event"] = bad_invite(peer, room, target, sender="@mallory:elsewhere.test")
        event_id = event_id_of(body["event"], version)
        expected = (403, "M_FORBIDDEN")
    elif case == "not_our_user":
        body["event"] = bad_invite(peer, room, "@x:elsewhere.test", state_key="@x:elsewhere.test")
        event_id = event_id_of(body["event"], version)
    elif case == "not_invite":
        body["event"] = bad_invite(peer, room, target, content={"membership": "join"})
        event_id = event_id_of(body["event"], version)
    elif case == "wrong_event_id":
        event_id = "$not-this-one"
    elif case == "unknown_user":
        ghost = f"@ghost-{bob.user_id[1:7]}:{fed_server.server_name}"
        body["event"] = bad_invite(peer, room, ghost, state_key=ghost)
        event_id = event_id_of(body["event"], version)
        expected = (403, "M_FORBIDDEN")
    elif case == "bad_version":
        body["room_version"] = "999"
        expected = (400, "M_INCOMPATIBLE_ROOM_VERSION")
    elif case == "not_json":
        raw = b"{not json"
        expected = (400, "M_NOT_JSON")
    elif case == "missing_event":
        body = {"room_version": version}
        expected = (400, "M_MISSING_PARAM")
    path = invite_path(room.room_id, event_id)
    if raw is not None:
        response = peer.request("PUT", fed_server, path, raw_body=raw,
                                authorization=peer.authorization("PUT", path, fed_server.server_name))
    else:
        response = peer.request("PUT", fed_server, path, body)
    assert (response.status_code, response.json().get("errcode")) == expected, response.text
    assert room.room_id not in bob.get(f"{V3}/sync").body.get("rooms", {}).get("invite", {})


def test_an_invite_into_a_room_we_are_in_must_pass_its_state(fed_server: RunningServer,
                                                              peer: ScriptedPeer) -> None:
    """A peer user without the power to invite gets 403; the room's state decides."""
    alice, bob = new_user(fed_server.base_url), new_user(fed_server.base_url)
    room_id = create_room(alice, preset="public_chat")
    pl = get_state(alice, room_id, "m.room.power_levels").body
    assert put_state(alice, room_id, "m.room.power_levels", {**pl, "invite": 50}).status == 200
    room_version = get_state(alice, room_id, "m.room.create").body.get("room_version", "1")
    user = f"@pat:{peer.server_name}"
    assert peer_join(peer, fed_server, room_id, user).status_code == 200
    made = peer.request("GET", fed_server, make_path("leave", room_id, user))  # a template on the room's head
    assert made.status_code == 200
    template = made.json()["event"]
    template.update(state_key=str(bob.user_id), content={"membership": "invite"})
    pdu = sign_template(peer, template, room_version)
    response = peer.request("PUT", fed_server, invite_path(room_id, event_id_of(pdu, room_version)),
                            {"room_version": room_version, "event": pdu})
    assert (response.status_code, response.json().get("errcode")) == (403, "M_FORBIDDEN"), response.text


# -- knocks on our rooms -------------------------------------------------------------------

def test_a_peer_user_knocks_on_our_room(fed_server: RunningServer, peer: ScriptedPeer) -> None:
    alice = new_user(fed_server.base_url)
    room_id = create_room(alice, preset="private_chat", name="knockable")
    assert put_state(alice, room_id, "m.room.join_rules", {"join_rule": "knock"}).status == 200
    version = get_state(alice, room_id, "m.room.create").body.get("room_version", "1")
    user = f"@kim:{peer.server_name}"
    missing_ver = peer.request("GET", fed_server, make_path("knock", room_id, user))
    assert (missing_ver.status_code, missing_ver.json()["errcode"]) == (400, "M_MISSING_PARAM")
    made = peer.request("GET", fed_server, make_path("knock", room_id, user) + f"?ver={version}")
    assert made.status_code == 200, made.text
    assert made.json()["event"]["content"]["membership"] == "knock"
    pdu = sign_template(peer, made.json()["event"], version)
    wrong = sign_template(peer, made.json()["event"], version, content={"membership": "join"})
    refused = peer.request("PUT", fed_server, send_path("knock", room_id, event_id_of(wrong, version), 1), wrong)
    assert (refused.status_code, refused.json()["errcode"]) == (400, "M_BAD_JSON")
    sent = peer.request("PUT", fed_server, send_path("knock", room_id, event_id_of(pdu, version), 1), pdu)
    assert sent.status_code == 200, sent.text
    shown = {(e["type"], e["state_key"]) for e in sent.json()["knock_room_state"]}
    assert ("m.room.name", "") in shown and ("m.room.join_rules", "") in shown
    assert get_state(alice, room_id, "m.room.member", user).body["membership"] == "knock"


def test_knocking_on_a_public_room_is_refused(fed_server: RunningServer, peer: ScriptedPeer) -> None:
    alice: Client = new_user(fed_server.base_url)
    room_id = create_room(alice, preset="public_chat")
    version = get_state(alice, room_id, "m.room.create").body.get("room_version", "1")
    made = peer.request("GET", fed_server, make_path("knock", room_id, f"@kim:{peer.server_name}") + f"?ver={version}")
    assert (made.status_code, made.json()["errcode"]) == (403, "M_FORBIDDEN"), made.text
