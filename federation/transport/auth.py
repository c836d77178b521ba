"""Authenticating inbound federation requests (X-Matrix) and room-scoped access (server ACLs).

Every signed federation endpoint starts with
``origin, body = await hs.get(FederationAuth).authenticate(request)``:

- the JSON body is read first (PUT/POST; M_NOT_JSON / M_TOO_LARGE as for clients),
  because it is part of what was signed;
- 401 M_UNAUTHORIZED for a missing or malformed X-Matrix header, a destination that
  is not us, an origin whose key cannot be found, or a signature that does not verify;
- 403 M_FORBIDDEN for an origin outside ``federation_domain_whitelist``.

Room-scoped endpoints then call ``await auth.check_server_acl(origin, room_id)``
(403 M_FORBIDDEN when the room's ``m.room.server_acl`` denies the origin).
``on_authenticated`` callbacks (``async fn(origin)``) run after each success, e.g. so
the transaction sender can reset its backoff for a peer that just reached us.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.web.server import Request

from federation.keys.keyring import KeyRing
from federation.transport.x_matrix import (
    XMatrixParseError,
    is_x_matrix,
    parse_credential,
    request_signing_object,
)
from homeserver.config.names import split_server_name
from homeserver.errors import MatrixError, forbidden
from homeserver.events.server_acl import server_allowed_by_acl
from homeserver.events.signing import SignatureError
from homeserver.handlers.rooms.room_state import RoomStateHandler
from homeserver.http.request import parse_json, read_body
from homeserver.server import Server

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 1024 * 1024

OriginHook = Callable[[str], Awaitable[None]]


def unauthorized(message: str) -> MatrixError:
    return MatrixError(401, "M_UNAUTHORIZED", message)


class FederationAuth:
    def __init__(self, hs: Server) -> None:
        self.server_name: str = hs.server_name
        self.keyring = hs.get(KeyRing)
        self.room_state = hs.get(RoomStateHandler)
        whitelist = hs.config.federation_domain_whitelist
        self.domain_whitelist = frozenset(whitelist) if whitelist is not None else None
        self.on_authenticated: list[OriginHook] = []

    async def authenticate(self, request: Request, max_body: int = DEFAULT_MAX_BODY) -> tuple[str, Any]:
        """(origin, parsed JSON body or None). Raises MatrixError (400/401/403/413)."""
        content = self._read_content(request, max_body)
        credentials = self._credentials(request)
        origin = credentials[0].origin
        if any(credential.origin != origin for credential in credentials):
            raise unauthorized("X-Matrix credentials name more than one origin")
        try:
            split_server_name(origin)
        except ValueError:
            raise unauthorized("The X-Matrix origin is not a server name") from None
        for credential in credentials:
            if credential.destination is not None and credential.destination != self.server_name:
                raise unauthorized(f"This request was signed for {credential.destination}, not for us")
        if self.domain_whitelist is not None and origin not in self.domain_whitelist:
            raise forbidden("Federation with this server is not allowed")
        signed = request_signing_object(request.method.decode("ascii"), request.uri.decode("ascii", "replace"),
                                        origin, self.server_name, content)
        signed["signatures"] = {origin: {c.key_id: c.signature for c in credentials}}
        try:
            await self.keyring.verify_json_for_server(origin, signed, int(time.time() * 1000))
        except SignatureError as exc:
            raise unauthorized(f"Request signature check failed: {exc}") from None
        request.requester_id = origin  # type: ignore[attr-defined]  # for the access log
        for hook in list(self.on_authenticated):
            try:
                await hook(origin)
            except Exception:
                logger.exception("on_authenticated hook %r failed for %s", hook, origin)
        return origin, content

    @staticmethod
    def _read_content(request: Request, max_body: int) -> Any:
        if request.method not in (b"PUT", b"POST"):
            return None
        raw = read_body(request, max_body)
        if not raw.strip():
            return None
        return parse_json(raw)

    @staticmethod
    def _credentials(request: Request) -> list[Any]:
        headers = request.requestHeaders.getRawHeaders(b"authorization") or []
        credentials = []
        for raw in headers:
            try:
                text = raw.decode("ascii")
            except UnicodeDecodeError:
                raise unauthorized("The Authorization header is not ASCII") from None
            if not is_x_matrix(text):
                continue
            try:
                credentials.append(parse_credential(text))
            except XMatrixParseError as exc:
                raise unauthorized(f"Malformed X-Matrix Authorization header: {exc}") from None
        if not credentials:
            raise unauthorized("Missing X-Matrix Authorization header")
        return credentials

    async def check_server_acl(self, origin: str, room_id: str) -> None:
        """403 when the room's current m.room.server_acl denies ``origin`` (no ACL: everyone may)."""
        acl = await self.room_state.get_current_state_event(room_id, "m.room.server_acl", "")
        if acl is None:
            return
        content = acl.event.content
        if isinstance(content, dict) and not server_allowed_by_acl(origin, content):
            raise forbidden("Server is banned from this room")
