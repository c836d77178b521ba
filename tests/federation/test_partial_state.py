"""Partial-state joins (MSC3706) with the scripted peer: our ``send_join`` answer with
``omit_members``, and our user joining the peer's room whose answer leaves the members out.
While the room is partial the user sends at once and lazy-loading syncs show it; ``/members``
waits for the background resync, which a restart resumes."""

from __future__ import annotations

import json
import threading
from typing import Any
from urllib.parse import quote

from homeserver.events.event import Event
from tests.support.client import Client, q
from tests.support.federation import ScriptedPeer
from tests.support.federation_rooms import (
    FED,
    PeerRoom,
    event_id_of,
    make_path,
    send_path,
    sign_template,
)
from tests.support.rooms import V3, create_room, joined_members, new_user, send_message
from tests.support.server import RunningServer

LAZY = json.dumps({"room": {"state": {"lazy_load_members": True}}})


def partial_send_join(peer: ScriptedPeer, server: RunningServer, room_id: str, user_id: str) -> dict[str, Any]:
    made = peer.request("GET", server, make_path("join", room_id, user_id) + "?ver=10")
    assert made.status_code == 200, made.text
    pdu = sign_template(peer, made.json()["event"], "10")
    path = send_path("join", room_id, event_id_of(pdu, "10")) + "?omit_members=true"
    response = peer.request("PUT", server, path, pdu)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def member_keys(pdus: list[dict[str, Any]]) -> set[str]:
    return {e["state_key"] for e in pdus if e["type"] == "m.room.member"}


# -- serving ----------------------------------------------------------------------------------

def test_send_join_omits_members_when_asked(fed_server: RunningServer, peer: ScriptedPeer) -> None:
    alice = new_user(fed_server.base_url)
    room_id = create_room(alice, preset="public_chat", name="named", room_version="10")
    others = [new_user(fed_server.base_url) for _ in range(3)]
    for other in others:
        assert other.post(f"{V3}/join/{q(room_id)}", {}).status == 200
    answer = partial_send_join(peer, fed_server, room_id, f"@pat:{peer.server_name}")
    assert answer["members_omitted"] is True
    assert answer["servers_in_room"] == [fed_server.server_name]
    assert member_keys(answer["state"]) == set()  # a named room: no heroes needed
    assert {e["type"] for e in answer["state"]} >= {"m.room.create", "m.room.power_levels", "m.room.name"}
    # The auth chain holds what the returned state needs (alice's join authorised it), not the
    # other members, and leaves out what is already in the state.
    assert member_keys(answer["auth_chain"]) == {alice.user_id}
    state_ids = {event_id_of(e, "10") for e in answer["state"]}
    assert not state_ids & {event_id_of(e, "10") for e in answer["auth_chain"]}
    # Without the flag the answer is whole.
    full = partial_send_join_without_flag(peer, fed_server, room_id, f"@quinn:{peer.server_name}")
    assert full["members_omitted"] is False
    assert member_keys(full["state"]) >= {alice.user_id, *(o.user_id for o in others)}


def partial_send_join_without_flag(peer: ScriptedPeer, server: RunningServer, room_id: str,
                                   user_id: str) -> dict[str, Any]:
    made = peer.request("GET", server, make_path("join", room_id, user_id) + "?ver=10")
    pdu = sign_template(peer, made.json()["event"], "10")
    response = peer.request("PUT", server, send_path("join", room_id, event_id_of(pdu, "10")), pdu)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_an_unnamed_room_returns_the_heroes(fed_server: RunningServer, peer: ScriptedPeer) -> None:
    alice = new_user(fed_server.base_url)
    room_id = create_room(alice, preset="public_chat", room_version="10")
    others = [new_user(fed_server.base_url) for _ in range(6)]
    for other in others:
        assert other.post(f"{V3}/join/{q(room_id)}", {}).status == 200
    answer = partial_send_join(peer, fed_server, room_id, f"@pat:{peer.server_name}")
    everyone = sorted([alice.user_id, *(o.user_id for o in others)])
    assert member_keys(answer["state"]) == set(everyone[:5])


# -- joining the peer's room with partial state -----------------------------------------------

class PartialPeerRoom(PeerRoom):
    """The peer's room with several members; its send_join leaves them out (members_omitted),
    and /state_ids and /state at our join are served only once ``serve_state`` is called."""

    def __init__(self, peer: ScriptedPeer, members: int) -> None:
        super().__init__(peer)
        self.add("m.room.name", {"name": "the peer's big room"}, "")
        self.members = [f"@m{i}:{peer.server_name}" for i in range(members)]
        for user in self.members:
            self.add("m.room.member", {"membership": "join"}, user, sender=user)
        self.join_id: str | None = None
        self.state_asked = 0
        routes = peer.http.routes
        routes[("PUT", f"{FED}/v1/send/*")] = lambda _r: (200, {"pdus": {}})
        # Any event's auth chain: the room's state events but the joins of the others.
        routes[("GET", f"{FED}/v1/event_auth/{quote(self.room_id, safe='')}/*")] = self._event_auth

    def _event_auth(self, request: Any) -> tuple[int, Any]:
        wanted = [e for e in self.events if e.state_key is not None and e.event_id != self.join_id]
        return 200, {"auth_chain": [e.pdu for e in wanted]}

    def _send_join(self, request: Any) -> tuple[int, Any]:
        assert "omit_members=true" in request.path
        length = int(request.headers.get("Content-Length", "0"))
        pdu = json.loads(request.rfile.read(length))
        event = Event.from_pdu(pdu, self.version)
        self.join_id = event.event_id
        state = [e for key, e in self.state.items() if key[0] != "m.room.member"]
        self.events.append(event)
        self.state[("m.room.member", event.state_key or "")] = event
        chain = [self.state[("m.room.member", self.creator)].pdu]
        return 200, {"origin": self.peer.server_name, "state": [e.pdu for e in state], "auth_chain": chain,
                     "event": pdu, "members_omitted": True, "servers_in_room": [self.peer.server_name]}

    def serve_state(self) -> None:
        room = quote(self.room_id, safe="")
        routes = self.peer.http.httpd.routes
        routes[("GET", f"{FED}/v1/state_ids/{room}")] = self._state_ids
        routes[("GET", f"{FED}/v1/state/{room}")] = self._state

    def _before_join(self) -> list[Event]:
        return [e for e in self.state.values() if e.event_id != self.join_id]

    def _state_ids(self, request: Any) -> tuple[int, Any]:
        assert self.join_id is not None and quote(self.join_id, safe="") in request.path
        self.state_asked += 1
        creator_join = self.state[("m.room.member", self.creator)].event_id
        return 200, {"pdu_ids": sorted(e.event_id for e in self._before_join()),
                     "auth_chain_ids": [creator_join]}

    def _state(self, _request: Any) -> tuple[int, Any]:
        return 200, {"pdus": [e.pdu for e in self._before_join()], "auth_chain": []}


def sync_rooms(client: Client, filter_json: str | None = None) -> dict[str, Any]:
    params = {"filter": filter_json} if filter_json else None
    response = client.get(f"{V3}/sync", params=params)
    assert response.status == 200, response
    rooms: dict[str, Any] = response.body.get("rooms", {}).get("join", {})
    return rooms


def start_partial_join(fed_server: RunningServer, peer: ScriptedPeer) -> tuple[PartialPeerRoom, Client]:
    room = PartialPeerRoom(peer, members=6)
    bob = new_user(fed_server.base_url)
    room.serve_join(bob.user_id)
    response = bob.post(f"{V3}/join/{q(room.room_id)}", {}, params={"server_name": peer.server_name})
    assert response.status == 200, (response, fed_server.output()[-3000:])
    # Sending works at once, and a lazy-loading sync shows the room with what we hold.
    send_message(bob, room.room_id, "hello before the members are known")
    lazy = sync_rooms(bob, LAZY)
    assert room.room_id in lazy
    # A sync that is not lazy-loading waits for the whole member list.
    assert room.room_id not in sync_rooms(bob)
    # We do not hand out a room we hold only in part.
    made = peer.request("GET", fed_server, make_path("join", room.room_id, f"@late:{peer.server_name}") + "?ver=10")
    assert made.status_code == 404, made.text
    return room, bob


def send_from_member(peer: ScriptedPeer, server: RunningServer, room: PartialPeerRoom, body: str) -> str:
    """A message from a member whose join we do not hold yet (its auth events come from /event_auth)."""
    event = room.add("m.room.message", {"msgtype": "m.text", "body": body}, sender=room.members[0])
    txn = peer.request("PUT", server, f"{FED}/v1/send/t{event.event_id[1:9]}",
                       {"origin": peer.server_name, "origin_server_ts": event.origin_server_ts,
                        "pdus": [event.pdu]})
    assert txn.status_code == 200, txn.text
    assert txn.json()["pdus"][event.event_id] == {}, txn.json()
    return event.event_id


def everyone(room: PartialPeerRoom, bob: Client) -> set[str]:
    return {room.creator, *room.members, str(bob.user_id)}


def test_we_join_with_partial_state_and_complete_it(fed_server: RunningServer, peer: ScriptedPeer) -> None:
    room, bob = start_partial_join(fed_server, peer)
    # A member's message is accepted while the room is partial, checked against what it cites.
    event_id = send_from_member(peer, fed_server, room, "while partial")
    lazy = sync_rooms(bob, LAZY)[room.room_id]
    assert event_id in {e["event_id"] for e in lazy["timeline"]["events"]}
    # /joined_members waits for the resync; the state is served only now.
    found: dict[str, set[str]] = {}
    waiter = threading.Thread(target=lambda: found.update(members=joined_members(bob, room.room_id)))
    waiter.start()
    room.serve_state()
    waiter.join(timeout=60)
    assert found.get("members") == everyone(room, bob)
    assert room.state_asked >= 1
    # The non-lazy sync now shows the room, with every member in its state.
    rooms = sync_rooms(bob)
    assert room.room_id in rooms
    state_members = {e["state_key"] for e in rooms[room.room_id]["state"]["events"]
                     if e["type"] == "m.room.member"}
    timeline_members = {e["state_key"] for e in rooms[room.room_id]["timeline"]["events"]
                        if e["type"] == "m.room.member"}
    assert state_members | timeline_members == everyone(room, bob)
    members = bob.get(f"{V3}/rooms/{q(room.room_id)}/members")
    assert {e["state_key"] for e in members.body["chunk"]} == everyone(room, bob)


def test_a_restart_resumes_the_resync(fed_server: RunningServer, peer: ScriptedPeer) -> None:
    room, bob = start_partial_join(fed_server, peer)
    fed_server.restart()
    assert room.room_id not in sync_rooms(bob)  # still partial after the restart
    room.serve_state()
    assert joined_members(bob, room.room_id) == everyone(room, bob)
    assert room.room_id in sync_rooms(bob)
    # An event of a member we learnt of only through the resync is accepted.
    send_from_member(peer, fed_server, room, "after the resync")
