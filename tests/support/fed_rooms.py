"""A scripted peer taking part in a room on a Vignette server: it builds and signs PDUs for
its own users, sends them in transactions, and serves what Vignette fetches to fill gaps
(``/event``, ``/get_missing_events``, ``/state_ids``, ``/event_auth``) from what it built.

The room is created by a local user (a public room of room version 10 by default), and the
peer's users join it with join events sent in ``/send``: the peer reads the room's state over
the client API (the local user's view), then keeps its own copy of the state as it goes.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import attrs

from homeserver.events.auth import listed_auth_types_for_event
from homeserver.events.builder import build_event
from homeserver.events.event import Event
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from tests.support.client import Client, q
from tests.support.federation import ScriptedPeer
from tests.support.server import RunningServer

V1 = "/_matrix/federation/v1"
StateKey = tuple[str, str]


def peer_user(peer: ScriptedPeer, localpart: str | None = None) -> str:
    return f"@{localpart or 'u' + secrets.token_hex(3)}:{peer.server_name}"


@attrs.define
class PeerRoom:
    peer: ScriptedPeer
    server: RunningServer
    room_id: str
    room_version: RoomVersion
    #: The peer's view of the room state: (type, state_key) -> event ID.
    state: dict[StateKey, str] = attrs.field(factory=dict)
    #: Every PDU the peer knows (built or fetched), by event ID, with its depth.
    events: dict[str, Event] = attrs.field(factory=dict)
    #: What the peer builds on next.
    extremities: list[str] = attrs.field(factory=list)
    #: How often Vignette asked the peer for each kind of thing.
    asked: list[str] = attrs.field(factory=list)
    #: Events /get_missing_events may answer with (None: everything the peer knows).
    gme_answer: list[str] | None = None
    #: For /state_ids: the state before an event, as the peer says it was.
    state_before: dict[str, dict[StateKey, str]] = attrs.field(factory=dict)
    #: Called (in the peer's thread) before /get_missing_events answers: a test can hold it there.
    before_gme: Callable[[], None] | None = None
    #: The state after events the test builds on forks (its own bookkeeping).
    state_at: dict[str, dict[StateKey, str]] = attrs.field(factory=dict)

    @classmethod
    def create(cls, peer: ScriptedPeer, server: RunningServer, owner: Client,
               room_version: str = "10", **create_body: Any) -> PeerRoom:
        body = {"preset": "public_chat", "room_version": room_version, **create_body}
        response = owner.post("/_matrix/client/v3/createRoom", body)
        assert response.status == 200, response
        room = cls(peer, server, response.body["room_id"], KNOWN_ROOM_VERSIONS[room_version])
        room.serve()
        room.sync_from(owner)
        return room

    # -- learning the room from the server -----------------------------------------------

    def sync_from(self, owner: Client) -> None:
        """Take the state and latest event as the owner sees them (event IDs from the client API,
        PDUs from federation /event once the peer is in the room, else depth counted)."""
        state = owner.get(f"/_matrix/client/v3/rooms/{q(self.room_id)}/state")
        assert state.status == 200, state
        self.state = {(e["type"], e["state_key"]): e["event_id"] for e in state.body}
        timeline = owner.get(f"/_matrix/client/v3/rooms/{q(self.room_id)}/messages",
                             params={"dir": "b", "limit": "1000"})
        assert timeline.status == 200, timeline
        chunk = timeline.body["chunk"]
        self.extremities = [chunk[0]["event_id"]]
        for position, event in enumerate(reversed(chunk)):
            self.events.setdefault(event["event_id"], _Placeholder.event(event, self.room_version, position + 1))

    def fetch(self, event_id: str) -> Event:
        """A PDU from the server's /event (the peer must be in the room)."""
        response = self.peer.request("GET", self.server, f"{V1}/event/{quote(event_id, safe='')}")
        assert response.status_code == 200, response.text
        event = Event.from_pdu(response.json()["pdus"][0], self.room_version, event_id)
        self.remember(event)
        return event

    # -- building ------------------------------------------------------------------------

    def build(self, sender: str, event_type: str, content: dict[str, Any], state_key: str | None = None, *,
              prev: list[str] | None = None, state: dict[StateKey, str] | None = None,
              auth: list[str] | None = None, depth: int | None = None, advance: bool = True,
              redacts: str | None = None) -> Event:
        """A PDU signed by the peer on ``prev`` (default: the peer's extremities), its auth events
        chosen from ``state`` (default: the peer's view). ``advance`` makes it the new extremity and,
        for a state event, part of the peer's state."""
        prev = list(self.extremities if prev is None else prev)
        state = self.state if state is None else state
        provisional = Event(pdu={"type": event_type, "sender": sender, "content": content, "room_id": self.room_id,
                                 **({"state_key": state_key} if state_key is not None else {})},
                            event_id="$provisional", room_version=self.room_version)
        if auth is None:
            auth = [state[k] for k in sorted(listed_auth_types_for_event(provisional)) if k in state]
        if depth is None:
            depth = max((self.events[p].depth for p in prev if p in self.events), default=0) + 1
        event = build_event(room_version=self.room_version, event_type=event_type, sender=sender, content=content,
                            room_id=self.room_id, prev_event_ids=prev, auth_event_ids=auth, depth=depth,
                            origin_server_ts=int(time.time() * 1000), key=self.peer.key, state_key=state_key,
                            redacts=redacts)
        self.remember(event)
        if advance:
            self.extremities = [event.event_id]
            if state_key is not None:
                self.state[(event_type, state_key)] = event.event_id
        return event

    def join(self, user_id: str) -> Event:
        return self.build(user_id, "m.room.member", {"membership": "join"}, user_id)

    # -- sending -------------------------------------------------------------------------

    def send(self, pdus: list[Any], edus: list[Any] = (), txn_id: str | None = None) -> dict[str, Any]:  # type: ignore[assignment]
        """PUT /send with the PDUs (Events or raw dicts); the per-PDU results."""
        response = self.send_raw({"origin": self.peer.server_name, "origin_server_ts": int(time.time() * 1000),
                                  "pdus": [p.pdu if isinstance(p, Event) else p for p in pdus],
                                  "edus": list(edus)}, txn_id)
        assert response.status_code == 200, response.text
        return response.json()["pdus"]

    def send_raw(self, body: Any, txn_id: str | None = None) -> Any:
        return self.peer.request("PUT", self.server, f"{V1}/send/{txn_id or secrets.token_hex(6)}", body)

    # -- serving what Vignette asks for --------------------------------------------------

    def serve(self) -> None:
        routes = self.peer.http.routes
        room = quote(self.room_id, safe="")
        routes[("POST", f"{V1}/get_missing_events/{room}")] = self._get_missing_events
        routes[("GET", f"{V1}/state_ids/{room}")] = self._state_ids

    def _get_missing_events(self, handler: Any) -> tuple[int, Any]:
        length = int(handler.headers.get("Content-Length", "0"))
        body = json.loads(handler.rfile.read(length))
        self.asked.append("get_missing_events")
        if self.before_gme is not None:
            self.before_gme()
        earliest = set(body.get("earliest_events", []))
        found: list[Event] = []
        frontier = [p for e in body["latest_events"] if e in self.events for p in self.events[e].prev_event_ids]
        seen = set(earliest)
        while frontier and len(found) < body.get("limit", 10):
            event_id = frontier.pop(0)
            if event_id in seen or event_id not in self.events or "_placeholder" in self.events[event_id].pdu:
                continue
            seen.add(event_id)
            if self.gme_answer is None or event_id in self.gme_answer:
                found.append(self.events[event_id])
            frontier.extend(self.events[event_id].prev_event_ids)
        return 200, {"events": [e.pdu for e in sorted(found, key=lambda e: e.depth)]}

    def _state_ids(self, handler: Any) -> tuple[int, Any]:
        self.asked.append("state_ids")
        event_id = handler.path.split("event_id=", 1)[1].split("&")[0]
        state = self.state_before.get(_unquote(event_id))
        if state is None:
            return 404, {"errcode": "M_NOT_FOUND", "error": "unknown"}
        return 200, {"pdu_ids": sorted(state.values()), "auth_chain_ids": []}

    def remember_pdu(self, pdu: dict[str, Any]) -> str:
        """Hold a PDU the server served; its event ID."""
        event = Event.from_pdu(pdu, self.room_version)
        self.remember(event)
        return event.event_id

    def remember(self, event: Event) -> None:
        """Hold the PDU and serve it at /event."""
        self.events[event.event_id] = event

        def serve_event(_handler: Any) -> tuple[int, Any]:
            self.asked.append("event")
            return 200, {"origin": self.peer.server_name, "origin_server_ts": int(time.time() * 1000),
                         "pdus": [event.pdu]}

        self.peer.http.routes[("GET", f"{V1}/event/{quote(event.event_id, safe='')}")] = serve_event


def _unquote(text: str) -> str:
    from urllib.parse import unquote

    return unquote(text)


class _Placeholder:
    """An event known only from the client API: its ID and a depth counted from the timeline."""

    @staticmethod
    def event(client_event: dict[str, Any], room_version: RoomVersion, depth: int) -> Event:
        return Event(pdu={"_placeholder": True, "depth": depth, "type": client_event["type"]},
                     event_id=client_event["event_id"], room_version=room_version)
