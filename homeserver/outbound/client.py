"""The server's one outbound HTTP client: every request to another host goes through it.

What it guarantees, whoever calls it (federation, remote media, push gateways,
URL previews):

- names are resolved by our own resolver, and every resolved address is
  checked against the address filter *at connect time*, immediately before we
  dial that exact address, so DNS rebinding cannot slip a private address past
  the check; a name with any blocked address is refused outright;
- TLS checks the certificate against the name we meant to reach (the policy
  decides the trust root), and sends SNI;
- a timeout covers connecting and receiving the response headers, another
  covers reading the body, and bodies are capped in size while they stream in.

``request()`` returns once the headers are in; read the body with
``read()``, ``json()`` or ``stream_to()`` (or ``discard()`` it).  Callers that
know better where a name lives (federation's server-name resolution) pass a
``Route``: the addresses to try in order, the name the certificate must carry
and the Host header.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urljoin

import attrs
from twisted.internet import defer, endpoints, error, protocol
from twisted.internet.interfaces import IProtocolFactory, IStreamClientEndpoint
from twisted.python.failure import Failure
from twisted.web import client as web_client
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer, IResponse
from zope.interface import implementer

from homeserver.outbound.address_filter import AddressFilter
from homeserver.outbound.dns import DnsLookupError, HostResolver, ip_literal
from homeserver.outbound.tls import TlsPolicy, VerifyingTls
from homeserver.server import Server

logger = logging.getLogger(__name__)

USER_AGENT = b"Vignette/0.1.0"
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
REDIRECT_CODES = (301, 302, 303, 307, 308)


class OutboundRequestError(Exception):
    """The request could not be made or its response could not be read."""


class BlockedDestinationError(OutboundRequestError):
    """Policy forbids the destination (an address in ip_range_blacklist, or a domain not allowed)."""


class RequestTimedOutError(OutboundRequestError):
    pass


class ResponseTooLargeError(OutboundRequestError):
    pass


class ConnectFailedError(OutboundRequestError):
    pass


@attrs.frozen
class Route:
    """Where to connect for one request: ``addresses`` ((host or IP, port), tried in order),
    ``tls_name`` (the name the certificate must be valid for; None for plain HTTP) and
    ``host_header`` (sent as Host)."""

    addresses: tuple[tuple[str, int], ...]
    tls_name: str | None
    host_header: str


def route_for_url(url: str) -> Route:
    """The ordinary route of an http(s) URL: its host and port, TLS for https."""
    uri = web_client.URI.fromBytes(url.encode("ascii"))
    scheme = uri.scheme.decode("ascii")
    if scheme not in ("http", "https"):
        raise OutboundRequestError(f"unsupported URL scheme {scheme!r}")
    host = uri.host.decode("ascii").strip("[]")
    netloc = uri.netloc.decode("ascii").rpartition("@")[2]
    return Route(((host, uri.port),), host if scheme == "https" else None, netloc)


@attrs.define
class OutboundResponse:
    """Status and headers of a response whose body has not been read yet."""

    code: int
    headers: Headers
    url: str
    _response: IResponse
    _reactor: Any
    _body_timeout_s: float
    _max_bytes: int

    def header(self, name: str) -> str | None:
        values = self.headers.getRawHeaders(name.encode("ascii"))
        return values[0].decode("latin-1") if values else None

    async def read(self, max_bytes: int | None = None) -> bytes:
        """The whole body; ResponseTooLargeError past ``max_bytes`` (default: the request's cap)."""
        chunks: list[bytes] = []
        await self.stream_to(chunks.append, max_bytes)
        return b"".join(chunks)

    async def json(self, max_bytes: int | None = None) -> Any:
        """The body parsed as strict JSON (no NaN/Infinity); OutboundRequestError if it is not JSON."""
        raw = await self.read(max_bytes)
        try:
            return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise OutboundRequestError(f"response from {self.url} is not JSON") from exc

    async def stream_to(self, write: Callable[[bytes], Any], max_bytes: int | None = None) -> int:
        """Hand each chunk of the body to ``write`` as it arrives; returns the byte count."""
        limit = self._max_bytes if max_bytes is None else max_bytes
        finished: defer.Deferred[int] = defer.Deferred()
        reader = _BodyReader(finished, write, limit)
        self._response.deliverBody(reader)
        finished.addTimeout(self._body_timeout_s, self._reactor, onTimeoutCancel=reader.on_timeout)
        try:
            return await finished
        except defer.CancelledError:
            raise RequestTimedOutError(f"reading the response from {self.url} timed out") from None

    def discard(self) -> None:
        """Drop the body unread (closing the connection if it is large)."""
        self._response.deliverBody(_Discarder())


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class _BodyReader(protocol.Protocol):
    def __init__(self, finished: defer.Deferred[int], write: Callable[[bytes], Any], limit: int) -> None:
        self.finished = finished
        self.write = write
        self.limit = limit
        self.received = 0
        self.failed: Exception | None = None

    def dataReceived(self, data: bytes) -> None:
        if self.failed is not None:
            return
        self.received += len(data)
        if self.received > self.limit:
            self._fail(ResponseTooLargeError(f"response body is larger than {self.limit} bytes"))
            return
        try:
            self.write(data)
        except Exception as exc:  # noqa: BLE001 - the consumer's failure ends the download
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        self.failed = exc
        if self.transport is not None:
            self.transport.stopProducing()  # type: ignore[attr-defined]  # a TCP transport is also a producer

    def on_timeout(self, result: Any, timeout: float) -> Any:
        if self.transport is not None:
            self.transport.stopProducing()  # type: ignore[attr-defined]
        return result

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        if self.finished.called:
            return
        if self.failed is not None:
            self.finished.errback(self.failed)
        elif reason.check(web_client.ResponseDone, web_client.PotentialDataLoss):
            self.finished.callback(self.received)
        else:
            self.finished.errback(OutboundRequestError(f"connection lost reading the body: {reason.value}"))


class _Discarder(protocol.Protocol):
    def dataReceived(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.stopProducing()  # type: ignore[attr-defined]


@implementer(IStreamClientEndpoint)
class _GuardedEndpoint:
    """Resolves each address of the route, refuses blocked ones, then dials the checked IP."""

    def __init__(self, client: OutboundHttpClient, route: Route) -> None:
        self.client = client
        self.route = route

    def connect(self, factory: IProtocolFactory) -> defer.Deferred[Any]:
        return defer.Deferred.fromCoroutine(self._connect(factory))

    async def _connect(self, factory: IProtocolFactory) -> Any:
        failure: OutboundRequestError = ConnectFailedError("no address to connect to")
        for host, port in self.route.addresses:
            try:
                ips = await self.client.resolver.resolve_host(host)
            except DnsLookupError as exc:
                failure = ConnectFailedError(str(exc))
                continue
            blocked = [ip for ip in ips if not self.client.address_filter.allows(ip)]
            if blocked:
                logger.info("Refused outbound connection to %s (%s): blocked address", host, ", ".join(blocked))
                failure = BlockedDestinationError(f"{host} resolves to a blocked address")
                continue
            for ip in ips:
                try:
                    return await self._dial(ip, port, factory)
                except (error.ConnectError, error.ConnectionLost, OSError) as exc:
                    failure = ConnectFailedError(f"cannot connect to {host} ({ip}:{port}): {exc}")
        raise failure

    def _dial(self, ip: str, port: int, factory: IProtocolFactory) -> defer.Deferred[Any]:
        reactor = self.client.reactor
        timeout = self.client.connect_timeout_s
        endpoint: Any
        if ":" in ip:
            endpoint = endpoints.TCP6ClientEndpoint(reactor, ip, port, timeout=timeout)
        else:
            endpoint = endpoints.TCP4ClientEndpoint(reactor, ip, port, timeout=timeout)
        if self.route.tls_name is not None:
            endpoint = endpoints.wrapClientTLS(self.client.tls.creator_for(self.route.tls_name), endpoint)
        return endpoint.connect(factory)


class _RouteEndpointFactory:
    def __init__(self, client: OutboundHttpClient, route: Route) -> None:
        self.client = client
        self.route = route

    def endpointForURI(self, uri: web_client.URI) -> IStreamClientEndpoint:
        return _GuardedEndpoint(self.client, self.route)


class OutboundHttpClient:
    """Outbound HTTP(S) with the address filter, TLS policy, timeouts and size caps.

    Built once per policy: ``hs.get(OutboundHttpClient)`` is the general-purpose one
    (platform trust store, the config's IP ranges); federation builds its own with its
    TLS policy.  Connections are pooled per (scheme, host, port).
    """

    def __init__(self, hs: Server, *, address_filter: AddressFilter | None = None, tls: TlsPolicy | None = None,
                 resolver: HostResolver | None = None) -> None:
        config = hs.config
        self.reactor = hs.reactor
        self.address_filter = address_filter or AddressFilter.from_ranges(
            config.ip_range_blacklist, config.ip_range_whitelist)
        self.tls: TlsPolicy = tls or VerifyingTls()
        self.resolver = resolver or hs.get(HostResolverComponent).resolver
        self.connect_timeout_s = DEFAULT_CONNECT_TIMEOUT_S
        self._pool = web_client.HTTPConnectionPool(self.reactor, persistent=True)
        self._pool.maxPersistentPerHost = 5
        self._pool.cachedConnectionTimeout = 120
        # Twisted retries only idempotent requests without a body on a pooled connection that the
        # peer closed meanwhile; that is what we want (PUT/POST callers retry at their own level).
        self._pool.retryAutomatically = True

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str | Sequence[str]] | None = None,
        json_body: Any = None,
        body: bytes | IBodyProducer | None = None,
        route: Route | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        follow_redirects: int = 0,
    ) -> OutboundResponse:
        """Send one request; return once the status and headers have arrived.

        ``url`` is http(s)://..., or any scheme when ``route`` says where to connect.
        ``json_body`` (any JSON value) or ``body`` (bytes or an IBodyProducer that
        streams) is the request body.  ``follow_redirects`` > 0 follows that many
        30x responses (only for requests without a route); each hop is filtered afresh.
        """
        raw_headers = Headers({b"User-Agent": [USER_AGENT]})
        for name, value in (headers or {}).items():
            values = [value] if isinstance(value, str) else list(value)
            raw_headers.setRawHeaders(name.encode("ascii"), [v.encode("latin-1") for v in values])
        producer: IBodyProducer | None
        if json_body is not None:
            producer = web_client.FileBodyProducer(_bytes_io(_encode_json(json_body)))
            raw_headers.setRawHeaders(b"Content-Type", [b"application/json"])
        elif isinstance(body, bytes):
            producer = web_client.FileBodyProducer(_bytes_io(body))
        else:
            producer = body
        visited: set[str] = set()
        while True:
            visited.add(url)
            response = await self._send(method, url, raw_headers, producer, route, timeout_s, max_response_bytes)
            location = response.header("Location")
            if (route is not None or follow_redirects <= 0 or response.code not in REDIRECT_CODES
                    or not location):
                return response
            response.discard()
            next_url = urljoin(url, location)
            if next_url in visited or not next_url.startswith(("http://", "https://")):
                raise OutboundRequestError(f"redirect loop or bad redirect from {url}")
            follow_redirects -= 1
            url = next_url
            if response.code == 303 or (response.code in (301, 302) and method == "POST"):
                method, producer = "GET", None

    async def _send(self, method: str, url: str, headers: Headers, producer: IBodyProducer | None,
                    route: Route | None, timeout_s: float, max_bytes: int) -> OutboundResponse:
        try:
            chosen = route or route_for_url(url)
        except (ValueError, UnicodeEncodeError) as exc:
            raise OutboundRequestError(f"bad URL {url!r}") from exc
        request_headers = headers.copy()
        request_headers.setRawHeaders(b"Host", [chosen.host_header.encode("idna")])
        agent = web_client.Agent.usingEndpointFactory(self.reactor, _RouteEndpointFactory(self, chosen),
                                                      pool=self._pool)
        pending = agent.request(method.encode("ascii"), url.encode("ascii"), request_headers, producer)
        timed_out: list[bool] = []

        def on_timeout(result: Any, timeout: float) -> Any:
            timed_out.append(True)
            return result

        pending.addTimeout(timeout_s, self.reactor, onTimeoutCancel=on_timeout)
        try:
            response = await pending
        except Exception as exc:
            if timed_out:
                raise RequestTimedOutError(f"{method} {url} timed out after {timeout_s}s") from None
            self._raise_failure(method, url, exc)
        return OutboundResponse(response.code, response.headers, url, response, self.reactor,
                                timeout_s, max_bytes)

    @staticmethod
    def _raise_failure(method: str, url: str, exc: Exception) -> None:
        try:
            raise exc
        except (OutboundRequestError, defer.CancelledError):
            raise
        except web_client.ResponseNeverReceived as exc:
            reasons = [r.value for r in exc.reasons if isinstance(r, Failure)]
            inner = next((r for r in reasons if isinstance(r, OutboundRequestError)), None)
            if inner is not None:
                raise inner from None
            raise ConnectFailedError(f"{method} {url}: no response ({reasons})") from None
        except Exception as exc:  # noqa: BLE001 - any transport failure is one kind of error to callers
            raise ConnectFailedError(f"{method} {url} failed: {exc!r}") from exc

    async def close(self) -> None:
        await self._pool.closeCachedConnections()


class HostResolverComponent:
    """The server's one resolver (``hs.get(HostResolverComponent).resolver``), from ``outbound_dns_servers``."""

    def __init__(self, hs: Server) -> None:
        from homeserver.config.names import split_dns_server

        servers = [split_dns_server(value) for value in hs.config.outbound_dns_servers]
        self.resolver = HostResolver(hs.reactor, servers or None)


def _encode_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _bytes_io(data: bytes) -> Any:
    import io

    return io.BytesIO(data)


__all__ = [
    "BlockedDestinationError", "ConnectFailedError", "OutboundHttpClient", "OutboundRequestError",
    "OutboundResponse", "RequestTimedOutError", "ResponseTooLargeError", "Route", "ip_literal",
]
