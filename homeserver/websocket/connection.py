"""The WebSocket endpoint: authenticate over HTTP first, then hand the socket to autobahn."""

from __future__ import annotations

import logging
from typing import Any, cast

from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet.defer import Deferred
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from homeserver.errors import MatrixError, bad_json
from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.ephemeral.presence import PresenceHandler
from homeserver.http.auth import get_user_by_req, token_from_request
from homeserver.http.request import parse_json, query_filter, query_str
from homeserver.http.resource import encode_json_dropping_unencodable, write_error
from homeserver.server import Server
from homeserver.stream_token import StreamToken, parse_since
from homeserver.sync.encoded import encode_spliced
from homeserver.sync.filters import FilterHandler
from homeserver.websocket.commands import COMMANDS, run_command
from homeserver.websocket.hub import WebSocketHub
from homeserver.websocket.session import StreamSession

logger = logging.getLogger(__name__)

PING_INTERVAL_S = 30
PING_TIMEOUT_S = 15
MAX_CLIENT_MESSAGE = 1024 * 1024
CLOSE_REPLACED = 4000  # a newer connection for the same device took over
#: What autobahn keeps from the opening handshake and never reads again once the socket is open.
HANDSHAKE_ONLY = (
    "http_headers", "http_headers_cnt", "http_request_data", "http_response_data", "http_status_line",
    "http_request_uri", "http_request_path", "http_request_params", "http_request_host", "websocket_origin",
    "websocket_protocols", "websocket_extensions", "_wskey",
)


def shed_handshake_state(protocol: WebSocketServerProtocol) -> None:
    """An idle stream should cost little memory (issue 16: at most 16 KiB each, 10,000 per process).

    Three things outlive the handshake otherwise: Twisted's HTTP channel, still the transport's
    registered producer, with the upgrade's Request (headers, query arguments) hanging off it;
    autobahn's parsed handshake; and autobahn's per-instance copy of every factory option, which
    the protocol's class now holds (see StreamFactory). A dict does not shrink when keys go, so the
    protocol gets a fresh one sized to what is left.
    """
    transport: Any = protocol.transport
    transport.unregisterProducer()
    state = protocol.__dict__
    for name in HANDSHAKE_ONLY:
        state.pop(name, None)
    shared = type(protocol).__dict__
    for name in protocol.CONFIG_ATTRS:
        if name in state and name in shared and state[name] is shared[name]:
            del state[name]
    protocol.__dict__ = dict(state)


class StreamProtocol(WebSocketServerProtocol):
    hs: Server
    requester: Any
    access_token: str
    since: StreamToken | None
    sync_filter: Any
    session: StreamSession | None = None

    def onOpen(self) -> None:
        shed_handshake_state(self)
        hub = self.hs.get(WebSocketHub)
        # The callback holds the session itself: self.session is cleared on close,
        # and a frame being built when the socket closes may still report its rooms.
        session = StreamSession(
            self.hs, self.requester.user_id, self.requester.device_id,
            self.requester.access_token_id, hub.filters.pair(self.sync_filter), self.since,
            send=self.send_json, on_rooms=lambda rooms: hub.set_rooms(session, rooms),
            send_raw=lambda payload: self.sendMessage(payload, isBinary=False),
        )
        self.session = session
        previous = hub.register(session, self)
        if previous is not None:
            previous.sendClose(CLOSE_REPLACED, "Replaced by a newer connection for this device")
        Deferred.fromCoroutine(
            self.hs.get(PresenceHandler).user_syncing(self.requester.user_id, None)
        ).addErrback(lambda failure: logger.error("presence on connect failed: %s", failure.value))
        session.poke()

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if self.session is not None:
            self.hs.get(WebSocketHub).unregister(self.session, self)
            self.hs.get(PresenceHandler).user_stopped_syncing(self.requester.user_id)
            self.session = None

    def send_json(self, value: dict[str, Any]) -> None:
        """Frames may hold events serialised once for every reader (sync/encoded.py)."""
        payload = encode_spliced(value, self._encode_plain)
        self.sendMessage(payload, isBinary=False)

    def _encode_plain(self, value: Any) -> bytes:
        return encode_json_dropping_unencodable(value, f"a WebSocket message to {self.requester.user_id}")

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        Deferred.fromCoroutine(self._handle(payload))

    async def _handle(self, payload: bytes) -> None:
        request_id: Any = None
        try:
            message = parse_json(payload)
            if not isinstance(message, dict):
                raise bad_json("A message must be a JSON object")
            request_id = message.get("request_id")
            kind = message.get("type")
            if kind == "ack":
                token = message.get("next_batch")
                if not isinstance(token, str):
                    raise bad_json("ack needs next_batch")
                if self.session is not None and not self.session.ack(token):
                    raise MatrixError(400, "M_INVALID_PARAM", "That next_batch is not the frame in flight")
                return
            command = COMMANDS.get(kind) if isinstance(kind, str) else None
            if command is None:
                raise MatrixError(400, "M_UNRECOGNIZED", f"Unknown message type {kind!r}")
            body = await run_command(self.hs, command, self.requester, self.access_token, message)
            self.send_json({"type": "response", "request_id": request_id, "body": body})
        except MatrixError as error:
            self.send_json({"type": "error", "request_id": request_id, **error.to_json()})
        except Exception:
            logger.exception("WebSocket request from %s failed", self.requester.user_id)
            self.send_json({"type": "error", "request_id": request_id, "errcode": "M_UNKNOWN",
                            "error": "Internal server error"})


class StreamFactory(WebSocketServerFactory):
    protocol = StreamProtocol

    def __init__(self, hs: Server) -> None:
        super().__init__()
        self.hs = hs
        self.pending: tuple[Any, Any, dict[str, Any], str] | None = None
        self.setProtocolOptions(autoPingInterval=PING_INTERVAL_S, autoPingTimeout=PING_TIMEOUT_S,
                                maxMessagePayloadSize=MAX_CLIENT_MESSAGE, webStatus=False)
        # autobahn copies each option onto every connection; held once on a class of this
        # factory's own, the copies can be dropped once a socket is open (shed_handshake_state).
        options = {name: getattr(self, name) for name in StreamProtocol.CONFIG_ATTRS if hasattr(self, name)}
        self.protocol = cast(type[StreamProtocol], type("StreamProtocol", (StreamProtocol,), options))

    def buildProtocol(self, addr: Any) -> StreamProtocol:
        protocol = cast(StreamProtocol, super().buildProtocol(addr))
        assert self.pending is not None, "protocols are only built by StreamResource"
        protocol.hs = self.hs
        protocol.requester, protocol.since, protocol.sync_filter, protocol.access_token = self.pending
        return protocol


class StreamResource(Resource):
    """Authenticates like any client API, then upgrades to a WebSocket."""

    isLeaf = True

    def __init__(self, hs: Server) -> None:
        super().__init__()
        self.hs = hs
        self.factory = StreamFactory(hs)
        self.upgrade = WebSocketResource(self.factory)

    def render(self, request: Request) -> Any:
        Deferred.fromCoroutine(self._open(request))
        return NOT_DONE_YET

    async def _open(self, request: Request) -> None:
        try:
            requester = await get_user_by_req(request, self.hs.get(Auth))
            since = parse_since(query_str(request, "since"))
            sync_filter = await self.hs.get(FilterHandler).resolve(requester.user_id, query_filter(request))
        except MatrixError as error:
            write_error(request, error)
            return
        except Exception:
            logger.exception("WebSocket upgrade failed")
            write_error(request, MatrixError(500, "M_UNKNOWN", "Internal server error"))
            return
        if request._disconnected:
            return
        if (request.getHeader("upgrade") or "").lower() != "websocket":
            write_error(request, MatrixError(400, "M_UNRECOGNIZED", "This endpoint only speaks WebSocket"))
            return
        self.factory.pending = (requester, since, sync_filter, token_from_request(request) or "")
        try:
            self.upgrade.render(request)
        finally:
            self.factory.pending = None
