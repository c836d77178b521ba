"""Rooms over federation with the scripted peer: the peer as a joining server (it signs a
join from our ``make_join`` template) and as a resident server (it hosts a room of its own
and answers ``make_join``/``send_join`` for our users, or serves an alias)."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any
from urllib.parse import quote

from homeserver.events.builder import build_event
from homeserver.events.event import Event
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.events.signing import sign_event
from tests.support.federation import ScriptedPeer
from tests.support.server import RunningServer

FED = "/_matrix/federation"


def now_ms() -> int:
    return int(time.time() * 1000)


def make_path(kind: str, room_id: str, user_id: str) -> str:
    return f"{FED}/v1/make_{kind}/{quote(room_id, safe='')}/{quote(user_id, safe='')}"


def send_path(kind: str, room_id: str, event_id: str, version: int = 2) -> str:
    return f"{FED}/v{version}/send_{kind}/{quote(room_id, safe='')}/{quote(event_id, safe='')}"


def sign_template(peer: ScriptedPeer, template: dict[str, Any], room_version: str,
                  **changes: Any) -> dict[str, Any]:
    """The peer's signed event from a make_* template (``changes`` override fields)."""
    pdu = {k: v for k, v in template.items() if k not in ("signatures", "hashes", "unsigned")}
    pdu.update(origin=peer.server_name, origin_server_ts=now_ms(), **changes)
    return sign_event(pdu, KNOWN_ROOM_VERSIONS[room_version], peer.server_name, peer.key.key_id,
                      peer.key.signing_key)


def event_id_of(pdu: dict[str, Any], room_version: str) -> str:
    return Event.from_pdu(pdu, KNOWN_ROOM_VERSIONS[room_version]).event_id


def peer_join(peer: ScriptedPeer, server: RunningServer, room_id: str, user_id: str,
              versions: tuple[str, ...] = tuple(KNOWN_ROOM_VERSIONS)) -> Any:
    """make_join then send_join (v2) for a peer user; returns the send_join response."""
    query = "?" + "&".join(f"ver={v}" for v in versions)
    made = peer.request("GET", server, make_path("join", room_id, user_id) + query)
    assert made.status_code == 200, made.text
    version = made.json()["room_version"]
    pdu = sign_template(peer, made.json()["event"], version)
    return peer.request("PUT", server, send_path("join", room_id, event_id_of(pdu, version)), pdu)


class PeerRoom:
    """A room the scripted peer created and holds; it answers joins of other servers' users."""

    def __init__(self, peer: ScriptedPeer, room_version: str = "10", join_rule: str = "public") -> None:
        self.peer = peer
        self.version = KNOWN_ROOM_VERSIONS[room_version]
        self.room_id = f"!{secrets.token_hex(6)}:{peer.server_name}"
        self.creator = f"@creator:{peer.server_name}"
        self.events: list[Event] = []
        self.state: dict[tuple[str, str], Event] = {}
        self.joins: list[dict[str, Any]] = []  # what send_join received
        self.tamper: list[dict[str, Any]] = []  # extra (bad) PDUs to put into send_join's state
        self.add("m.room.create", {"room_version": room_version, **(
            {} if self.version.implicit_room_creator else {"creator": self.creator})}, "")
        self.add("m.room.member", {"membership": "join"}, self.creator)
        self.add("m.room.power_levels", {"users": {self.creator: 100}}, "")
        self.add("m.room.join_rules", {"join_rule": join_rule}, "")
        self.add("m.room.history_visibility", {"history_visibility": "shared"}, "")

    def auth_for(self, sender: str, event_type: str, state_key: str | None) -> list[str]:
        keys = [("m.room.create", ""), ("m.room.power_levels", ""), ("m.room.member", sender)]
        if event_type == "m.room.member" and state_key is not None:
            keys += [("m.room.member", state_key), ("m.room.join_rules", "")]
        return list(dict.fromkeys(self.state[k].event_id for k in keys if k in self.state))

    def add(self, event_type: str, content: dict[str, Any], state_key: str | None = None,
            sender: str | None = None) -> Event:
        sender = sender or self.creator
        event = build_event(room_version=self.version, event_type=event_type, sender=sender, content=content,
                            room_id=self.room_id, prev_event_ids=[self.events[-1].event_id] if self.events else [],
                            auth_event_ids=self.auth_for(sender, event_type, state_key)
                            if event_type != "m.room.create" else [],
                            depth=len(self.events) + 1, origin_server_ts=now_ms(), key=self.peer.key,
                            state_key=state_key)
        self.events.append(event)
        if state_key is not None:
            self.state[(event_type, state_key)] = event
        return event

    def template(self, user_id: str) -> dict[str, Any]:
        return {"room_id": self.room_id, "type": "m.room.member", "sender": user_id, "state_key": user_id,
                "content": {"membership": "join"}, "origin": self.peer.server_name,
                "origin_server_ts": now_ms(), "depth": len(self.events) + 1,
                "prev_events": [self.events[-1].event_id],
                "auth_events": self.auth_for(user_id, "m.room.member", user_id)}

    def serve_join(self, user_id: str) -> None:
        """Answer make_join and send_join (v2) for ``user_id``."""
        routes = self.peer.http.routes
        routes[("GET", make_path("join", self.room_id, user_id))] = lambda _r: (
            200, {"room_version": self.version.identifier, "event": self.template(user_id)})
        # The event ID is not known in advance: accept any send_join path for this room.
        prefix = f"{FED}/v2/send_join/{quote(self.room_id, safe='')}/"
        routes[("PUT", prefix)] = self._send_join  # looked up by prefix, see route_prefixes
        self.peer.http.httpd.routes = _PrefixRoutes(routes, [("PUT", prefix)])

    def _send_join(self, request: Any) -> tuple[int, Any]:
        length = int(request.headers.get("Content-Length", "0"))
        pdu = json.loads(request.rfile.read(length))
        self.joins.append(pdu)
        state = [e.pdu for e in self.state.values()] + self.tamper
        event = Event.from_pdu(pdu, self.version)
        self.events.append(event)
        self.state[("m.room.member", event.state_key or "")] = event
        return 200, {"origin": self.peer.server_name, "state": state,
                     "auth_chain": [e.pdu for e in self.events[:4]], "event": pdu}

    def serve_alias(self, alias: str) -> None:
        self.peer.http.routes[("GET", f"{FED}/v1/query/directory")] = lambda _r: (
            200, {"room_id": self.room_id, "servers": [self.peer.server_name]})


class _PrefixRoutes(dict):  # type: ignore[type-arg]
    """The peer's routes, where some keys match any path that starts with them."""

    def __init__(self, routes: dict[Any, Any], prefixes: list[tuple[str, str]]) -> None:
        super().__init__(routes)
        self.prefixes = list(getattr(routes, "prefixes", [])) + prefixes

    def get(self, key: Any, default: Any = None) -> Any:
        found = super().get(key)
        if found is not None:
            return found
        method, path = key
        for prefix_method, prefix in self.prefixes:
            if method == prefix_method and path.startswith(prefix):
                return super().get((prefix_method, prefix))
        return default


# -- rooms shared by real servers (Vignette and Synapse), seen through their clients ---------

def timeline_bodies(body: dict[str, Any], room_id: str) -> list[str]:
    room = body.get("rooms", {}).get("join", {}).get(room_id)
    events = room["timeline"]["events"] if room else []
    return [e.get("content", {}).get("body") for e in events if e.get("type") == "m.room.message"]


def ephemeral(body: dict[str, Any], room_id: str, event_type: str) -> list[dict[str, Any]]:
    room = body.get("rooms", {}).get("join", {}).get(room_id)
    return [e for e in (room or {}).get("ephemeral", {}).get("events", []) if e.get("type") == event_type]


def sync_until(client: Any, predicate: Any, since: str | None = None, attempts: int = 30) -> dict[str, Any]:
    """Long-poll /sync (5 s at a time) until ``predicate(body)``; fails after ``attempts`` polls."""
    for _ in range(attempts):
        params: dict[str, Any] = {"timeout": 5000}
        if since is not None:
            params["since"] = since
        response = client.get("/_matrix/client/v3/sync", params=params, timeout=60)
        assert response.status == 200, response
        if predicate(response.body):
            return response.body
        since = response.body["next_batch"]
    raise AssertionError("the expected change never arrived")


def sync_token(client: Any) -> str:
    response = client.get("/_matrix/client/v3/sync", params={"timeout": 0}, timeout=60)
    assert response.status == 200, response
    return str(response.body["next_batch"])


def typing_user_ids(body: dict[str, Any], room_id: str) -> set[str]:
    return {user for e in ephemeral(body, room_id, "m.typing") for user in e["content"].get("user_ids", [])}


def receipt_readers(body: dict[str, Any], room_id: str, event_id: str) -> set[str]:
    readers: set[str] = set()
    for e in ephemeral(body, room_id, "m.receipt"):
        readers |= set(e["content"].get(event_id, {}).get("m.read", {}))
    return readers
