"""Receiving our transactions in tests: a scripted peer with a ``PUT /send/{txnId}`` of its own,
and an in-process Vignette on the test network whose rooms a peer's user can join.

- ``RecordingPeer``: a ``ScriptedPeer`` that checks each transaction's X-Matrix header against our
  server's public key (its own ed25519 check, not Vignette's), records what arrived, counts how
  many requests were in flight at once, and can answer with an error, or be down (its port
  closed) and up again on the same port.
- ``InProcessServer``: a HomeServer built in the test process on the test network (real storage,
  real HTTPS listeners, the real reactor), so a test can put a remote member into a room through
  the pipeline (``join_from``) as the federation receiver will; clients still talk HTTP to it.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import attrs
import nacl.exceptions
import nacl.signing
from twisted.internet import reactor, threads

from federation.transport.x_matrix import parse_credential
from homeserver.app import HomeServer
from homeserver.config import load_config
from homeserver.events.builder import build_event
from homeserver.events.event import Event
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.pipeline import EventPipeline, Outcome
from homeserver.pipeline.head import RoomHeads
from homeserver.signing_key import read_signing_keys
from tests.support.client import Client, register_user
from tests.support.federation import FederationNet, ScriptedPeer, TlsHttpServer, unique_label
from tests.support.harness import over_the_wire
from tests.support.server import free_port, write_config

SEND_PREFIX = "/_matrix/federation/v1/send/"


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


@attrs.define
class ReceivedTransaction:
    txn_id: str
    origin: str
    body: dict[str, Any]
    verified: bool
    answered: int
    parsed: list[Event] | None = None  # the PDUs as events, once asked for


class RecordingPeer:
    def __init__(self, net: FederationNet, sender_keys: Callable[[], dict[str, nacl.signing.VerifyKey]],
                 sender_name: Callable[[], str]) -> None:
        self.scripted = ScriptedPeer(net)
        self.net = net
        self.sender_keys = sender_keys
        self.sender_name = sender_name
        self.lock = threading.Lock()
        self.received: list[ReceivedTransaction] = []
        self.fail_with: int | None = None  # answer every transaction with this status
        self.hold_s = 0.0  # keep each request open this long (lets overlapping sends show)
        self.in_flight = 0
        self.max_in_flight = 0
        self._install(self.scripted.http)

    @property
    def server_name(self) -> str:
        return self.scripted.server_name

    @property
    def host(self) -> str:
        return self.server_name.rsplit(":", 1)[0]

    def _install(self, http: TlsHttpServer) -> None:
        http.routes[("PUT", SEND_PREFIX + "*")] = self._on_send

    def go_down(self) -> None:
        """Close the port: connections are refused until ``come_up``."""
        self.scripted.http.stop()

    def come_up(self) -> None:
        routes = dict(self.scripted.http.routes)
        http = TlsHttpServer(self.net, [self.host], "127.0.0.1", self.scripted.http.port)
        http.routes.update(routes)
        self.scripted.http = http

    def stop(self) -> None:
        self.scripted.stop()

    def _verified(self, request: BaseHTTPRequestHandler, body: Any) -> tuple[str, bool]:
        try:
            credential = parse_credential(request.headers.get("Authorization", ""))
        except ValueError:
            return "", False
        signed = {"method": request.command, "uri": request.path, "origin": credential.origin,
                  "destination": credential.destination, "content": body}
        key = self.sender_keys().get(credential.key_id)
        if key is None or credential.destination != self.server_name or credential.origin != self.sender_name():
            return credential.origin, False
        try:
            key.verify(canonical(signed), _b64decode(credential.signature))
        except nacl.exceptions.BadSignatureError:
            return credential.origin, False
        return credential.origin, True

    def _on_send(self, request: BaseHTTPRequestHandler) -> tuple[int, Any]:
        raw = request.rfile.read(int(request.headers.get("Content-Length", "0")))
        body = json.loads(raw)
        origin, verified = self._verified(request, body)
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.hold_s:
                time.sleep(self.hold_s)
            status = self.fail_with or 200
            with self.lock:
                self.received.append(ReceivedTransaction(unquote(request.path[len(SEND_PREFIX):]), origin,
                                                         body, verified, status))
            if status != 200:
                return status, {"errcode": "M_UNKNOWN", "error": "failing on purpose"}
            return 200, {"pdus": {}}
        finally:
            with self.lock:
                self.in_flight -= 1

    # -- what arrived ------------------------------------------------------------------------

    def accepted(self) -> list[ReceivedTransaction]:
        with self.lock:
            return [t for t in self.received if t.answered == 200]

    def failed_attempts(self) -> int:
        with self.lock:
            return sum(1 for t in self.received if t.answered != 200)

    def events(self, room_version: str = "10") -> list[Event]:
        """Every PDU of every accepted transaction, in arrival order (duplicates kept)."""
        version = KNOWN_ROOM_VERSIONS[room_version]
        events: list[Event] = []
        for txn in self.accepted():
            if txn.parsed is None:
                txn.parsed = [Event.from_pdu(pdu, version) for pdu in txn.body["pdus"]]
            events.extend(txn.parsed)
        return events

    def edus(self, edu_type: str) -> list[dict[str, Any]]:
        return [edu["content"] for t in self.accepted() for edu in t.body["edus"] if edu["edu_type"] == edu_type]


@attrs.define
class InProcessServer:
    hs: HomeServer
    config_path: Path
    client_url: str

    @property
    def server_name(self) -> str:
        return self.hs.server_name

    def verify_keys(self) -> dict[str, nacl.signing.VerifyKey]:
        return {e.key_id: e.key.verify_key for e in read_signing_keys(self.hs.config.signing_key_path)}

    async def register(self) -> Client:
        return await threads.deferToThread(register_user, self.client_url)

    async def call(self, client: Client, method: str, path: str, body: Any = None) -> Any:
        """One client request over HTTP (in a thread: the server runs on this reactor)."""
        response = await threads.deferToThread(client.request, method, path, body)
        assert response.status == 200, response
        return response.body

    async def join_from(self, peer: ScriptedPeer, room_id: str, localpart: str = "remote") -> str:
        """A join of ``@localpart:peer`` signed by the peer, into the room through the pipeline."""
        head = await self.hs.get(RoomHeads).load(room_id)
        assert head is not None
        state = head.state
        user_id = f"@{localpart}:{peer.server_name}"
        auth = [state[key] for key in (("m.room.create", ""), ("m.room.power_levels", ""),
                                       ("m.room.join_rules", "")) if key in state]
        event = build_event(room_version=head.room_version, event_type="m.room.member", sender=user_id,
                            state_key=user_id, content={"membership": "join"}, room_id=room_id,
                            prev_event_ids=sorted(head.extremities), auth_event_ids=auth,
                            depth=max(head.extremities.values()) + 1, origin_server_ts=int(time.time() * 1000),
                            key=peer.key)
        (result,) = await self.hs.get(EventPipeline).submit_remote(room_id, [over_the_wire(event)],
                                                                   peer.server_name)
        assert result.outcome is Outcome.ACCEPTED, result
        return user_id

    async def stop(self) -> None:
        await self.hs.shutdown()


def in_process_config(net: FederationNet, directory: Path, database: dict[str, Any], **overrides: Any) -> Path:
    label = unique_label("sender")
    host = f"{label}.test"
    port = free_port()
    net.dns.add(host, a=["127.0.0.1"])
    config = net.federation_config(f"{host}:{port}", port, [host])
    config.update(overrides)
    server_name = config.pop("server_name")
    return write_config(directory, database, server_name=server_name, **config)


async def start_in_process(config_path: Path) -> InProcessServer:
    hs = HomeServer(load_config(str(config_path)), reactor)
    await hs.setup()
    hs.start_listening()
    await hs.start_background_work()
    client_port = hs.config.listeners[0].port
    return InProcessServer(hs, config_path, f"http://127.0.0.1:{client_port}")
