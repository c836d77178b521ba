"""Signed requests to other homeservers.

``hs.get(FederationClient)`` resolves the destination's server name (well-known,
SRV, 8448), connects through the outbound client (address filter at connect
time, the federation TLS policy), and signs every request with X-Matrix unless
told not to (the key API is unauthenticated).  Errors are one type,
``FederationRequestError``: ``code`` is the HTTP status when the peer answered,
None when it could not be reached.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlencode

import attrs

from federation.transport.server_resolver import ServerNameResolver
from federation.transport.x_matrix import sign_request
from homeserver.outbound.address_filter import AddressFilter
from homeserver.outbound.client import (
    BlockedDestinationError,
    OutboundHttpClient,
    OutboundRequestError,
    OutboundResponse,
)
from homeserver.outbound.dns import DnsLookupError
from homeserver.outbound.tls import UnverifiedTls, VerifyingTls
from homeserver.server import Server

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
SCHEME = "matrix-federation"

QueryArgs = Mapping[str, str | int | Sequence[str]]


class FederationRequestError(Exception):
    """A request to ``destination`` failed; ``code``/``errcode``/``body`` when it answered with an error."""

    def __init__(self, destination: str, message: str, code: int | None = None,
                 errcode: str | None = None, body: Any = None) -> None:
        super().__init__(f"{destination}: {message}")
        self.destination = destination
        self.code = code
        self.errcode = errcode
        self.body = body


class FederationDeniedError(FederationRequestError):
    """Policy forbids contacting this destination (federation_domain_whitelist, blocked address)."""


def federation_path(template: str, *params: str) -> str:
    """Fill ``{}`` slots of a path with percent-encoded parameters (every reserved character escaped)."""
    return template.format(*(quote(param, safe="") for param in params))


def federation_uri(path: str, args: QueryArgs | None = None) -> str:
    if not args:
        return path
    pairs: list[tuple[str, str]] = []
    for name, value in args.items():
        values = [value] if isinstance(value, (str, int)) else list(value)
        pairs.extend((name, str(item)) for item in values)
    return f"{path}?{urlencode(pairs, quote_via=quote)}"


class FederationClient:
    def __init__(self, hs: Server) -> None:
        config = hs.config
        self.server_name: str = hs.server_name
        self.signing_key = hs.signing_key
        tls = VerifyingTls(config.federation_custom_ca_list) if config.federation_verify_certificates \
            else UnverifiedTls()
        # Synapse's federation_ip_range_blacklist, when set, replaces the general ranges here.
        self.http = OutboundHttpClient(hs, tls=tls,
                                       address_filter=AddressFilter.from_ranges(*config.federation_ip_ranges()))
        self.servers = ServerNameResolver(self.http, self.http.resolver)
        whitelist = config.federation_domain_whitelist
        self.domain_whitelist: frozenset[str] | None = frozenset(whitelist) if whitelist is not None else None

    def may_contact(self, destination: str) -> bool:
        """federation_domain_whitelist (when set) names every server we may talk to, ourselves aside."""
        return self.domain_whitelist is None or destination in self.domain_whitelist \
            or destination == self.server_name

    async def request(self, method: str, destination: str, path: str, *, args: QueryArgs | None = None,
                      json_body: Any = None, sign: bool = True, timeout_s: float = DEFAULT_TIMEOUT_S,
                      max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> OutboundResponse:
        """Send one request and return the response with its body unread (for streaming, e.g. media)."""
        if not self.may_contact(destination):
            raise FederationDeniedError(destination, "not in federation_domain_whitelist")
        uri = federation_uri(path, args)
        headers: dict[str, str] = {}
        if sign:
            headers["Authorization"] = sign_request(self.signing_key, method, uri, destination, json_body)
        try:
            route = await self.servers.resolve(destination)
            return await self.http.request(method, f"{SCHEME}://{destination}{uri}", headers=headers,
                                           json_body=json_body, route=route, timeout_s=timeout_s,
                                           max_response_bytes=max_response_bytes)
        except BlockedDestinationError as exc:
            raise FederationDeniedError(destination, str(exc)) from exc
        except (OutboundRequestError, DnsLookupError) as exc:
            raise FederationRequestError(destination, str(exc)) from exc
        except ValueError as exc:
            raise FederationRequestError(destination, f"not a valid server name: {exc}") from exc

    async def request_json(self, method: str, destination: str, path: str, **kwargs: Any) -> Any:
        """The parsed JSON of a 2xx answer; FederationRequestError for anything else."""
        response = await self.request(method, destination, path, **kwargs)
        try:
            body = await response.json()
        except OutboundRequestError as exc:
            if 200 <= response.code < 300:
                raise FederationRequestError(destination, str(exc), response.code) from exc
            body = None
        if not 200 <= response.code < 300:
            errcode = body.get("errcode") if isinstance(body, dict) else None
            raise FederationRequestError(destination, f"{method} {path} answered {response.code}",
                                         response.code, errcode if isinstance(errcode, str) else None, body)
        return body

    async def get_json(self, destination: str, path: str, args: QueryArgs | None = None, **kwargs: Any) -> Any:
        return await self.request_json("GET", destination, path, args=args, **kwargs)

    async def put_json(self, destination: str, path: str, body: Any, **kwargs: Any) -> Any:
        return await self.request_json("PUT", destination, path, json_body=body, **kwargs)

    async def post_json(self, destination: str, path: str, body: Any, **kwargs: Any) -> Any:
        return await self.request_json("POST", destination, path, json_body=body, **kwargs)


T = TypeVar("T")


@attrs.frozen
class FirstAnswer(Generic[T]):
    """What `first_answer` got: the server that gave a good answer and the answer (both None when
    none did), and each failed server with the error it raised, in the order they were asked."""

    server: str | None
    value: T | None
    errors: list[tuple[str, Exception]]


async def first_answer(servers: Iterable[str], ask: Callable[[str], Awaitable[T | None]], what: str, *,
                       retry_on: tuple[type[Exception], ...] = (FederationRequestError,),
                       skip: str | None = None) -> FirstAnswer[T]:
    """Ask ``servers`` in turn (each once, ``skip`` left out: usually ourselves) until one gives a good
    answer: ``ask(server)`` returning something other than None. A ``retry_on`` error or a None
    answer moves on to the next server (logged with ``what``); any other error propagates."""
    errors: list[tuple[str, Exception]] = []
    for server in dict.fromkeys(servers):
        if server == skip:
            continue
        try:
            value = await ask(server)
        except retry_on as exc:
            logger.info("%s through %s failed: %s", what, server, exc)
            errors.append((server, exc))
            continue
        if value is not None:
            return FirstAnswer(server, value, errors)
        logger.info("%s through %s gave nothing usable", what, server)
    return FirstAnswer(None, None, errors)
