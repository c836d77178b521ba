"""Finding the host and port behind a server name, as the spec's "Resolving server names" says.

1. IP literal: that address, the given port or 8448; the certificate must be for the IP.
2. Explicit port: the hostname's A/AAAA records, that port; certificate for the hostname.
3. ``https://<hostname>/.well-known/matrix/server`` (redirects followed, cached): its
   ``m.server`` (``<delegated>[:<port>]``) is resolved by the same steps, without
   another well-known lookup: IP literal, explicit port, SRV, port 8448.  The
   certificate must be for the delegated hostname.
4. No usable well-known: SRV ``_matrix-fed._tcp.<hostname>``, then the deprecated
   ``_matrix._tcp.<hostname>``; certificate for the hostname.
5. Otherwise A/AAAA records and port 8448.

The Host header is the server name in steps 1 and 2, the delegated name (with
its port if given) after a well-known delegation, and the hostname otherwise.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import attrs

from homeserver.async_utils import SharedLookups
from homeserver.config.names import split_server_name
from homeserver.outbound.client import OutboundHttpClient, OutboundRequestError, Route
from homeserver.outbound.dns import DnsLookupError, HostResolver, ip_literal

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8448
WELL_KNOWN_DEFAULT_TTL_MS = 24 * 3600 * 1000
WELL_KNOWN_MAX_TTL_MS = 48 * 3600 * 1000
WELL_KNOWN_MIN_TTL_MS = 5 * 60 * 1000
# An invalid answer (not 200, not JSON, no m.server) is remembered for an hour; a host that
# cannot be reached at all for 2 minutes, doubling on each further failure up to the hour.
WELL_KNOWN_INVALID_TTL_MS = 3600 * 1000
WELL_KNOWN_DOWN_FIRST_TTL_MS = 2 * 60 * 1000
WELL_KNOWN_MAX_BYTES = 50 * 1024
WELL_KNOWN_TIMEOUT_S = 10.0
WELL_KNOWN_MAX_REDIRECTS = 5
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d+)", re.IGNORECASE)


@attrs.define
class _WellKnownEntry:
    delegated: str | None
    expires_ms: int
    failures: int = 0


def _now_ms() -> int:
    return int(time.time() * 1000)


class ServerNameResolver:
    """Server name -> Route (addresses to dial, certificate name, Host header)."""

    def __init__(self, client: OutboundHttpClient, resolver: HostResolver) -> None:
        self.client = client
        self.resolver = resolver
        self._well_known: dict[str, _WellKnownEntry] = {}
        self._lookups: SharedLookups[str, str | None] = SharedLookups()

    async def resolve(self, server_name: str) -> Route:
        """Raises ValueError for a name that breaks the grammar, DnsLookupError when SRV lookups fail."""
        host, port = split_server_name(server_name)
        if ip_literal(host) is not None or port is not None:
            return self._direct(host, port, server_name)
        delegated = await self._delegation(host)
        if delegated is not None:
            try:
                delegated_host, delegated_port = split_server_name(delegated)
            except ValueError:
                delegated_host = None
            if delegated_host is not None:
                if ip_literal(delegated_host) is not None or delegated_port is not None:
                    return self._direct(delegated_host, delegated_port, delegated)
                return await self._via_srv(delegated_host)
        return await self._via_srv(host)

    @staticmethod
    def _direct(host: str, port: int | None, host_header: str) -> Route:
        bare = host.strip("[]")
        return Route(((bare, port or DEFAULT_PORT),), bare, host_header)

    async def _via_srv(self, host: str) -> Route:
        for service in ("_matrix-fed._tcp.", "_matrix._tcp."):
            targets = await self.resolver.lookup_srv(service + host)
            if targets:
                return Route(tuple((t.host, t.port) for t in targets), host, host)
        return Route(((host, DEFAULT_PORT),), host, host)

    async def _delegation(self, host: str) -> str | None:
        """``m.server`` of the host's well-known document (cached), or None."""
        entry = self._well_known.get(host)
        if entry is not None and entry.expires_ms > _now_ms():
            return entry.delegated
        return await self._lookups.run(host, lambda: self._fetch_well_known(host, entry))

    async def _fetch_well_known(self, host: str, previous: _WellKnownEntry | None) -> str | None:
        url = f"https://{host}/.well-known/matrix/server"
        now = _now_ms()
        try:
            response = await self.client.request("GET", url, timeout_s=WELL_KNOWN_TIMEOUT_S,
                                                 max_response_bytes=WELL_KNOWN_MAX_BYTES,
                                                 follow_redirects=WELL_KNOWN_MAX_REDIRECTS)
        except (OutboundRequestError, DnsLookupError) as exc:
            failures = (previous.failures + 1) if previous is not None and previous.delegated is None else 1
            ttl = min(WELL_KNOWN_DOWN_FIRST_TTL_MS * 2 ** (failures - 1), WELL_KNOWN_INVALID_TTL_MS)
            logger.info("No .well-known/matrix/server for %s (%s); retrying after %d s", host, exc, ttl // 1000)
            self._well_known[host] = _WellKnownEntry(None, now + ttl, failures)
            return None
        delegated = await self._parse_well_known(response)
        if delegated is None:
            self._well_known[host] = _WellKnownEntry(None, now + WELL_KNOWN_INVALID_TTL_MS)
            return None
        self._well_known[host] = _WellKnownEntry(delegated, now + _cache_ttl_ms(response.header("Cache-Control")))
        logger.info("%s delegates federation to %s", host, delegated)
        return delegated

    @staticmethod
    async def _parse_well_known(response: Any) -> str | None:
        if response.code != 200:
            response.discard()
            return None
        try:
            body = await response.json()
        except OutboundRequestError:
            return None
        delegated = body.get("m.server") if isinstance(body, dict) else None
        if not isinstance(delegated, str):
            return None
        try:
            split_server_name(delegated)
        except ValueError:
            return None
        return delegated


def _cache_ttl_ms(cache_control: str | None) -> int:
    """Honour max-age, clamped between 5 minutes and 48 hours; 24 hours without one."""
    if cache_control:
        found = _MAX_AGE.search(cache_control)
        if found:
            return max(WELL_KNOWN_MIN_TTL_MS, min(int(found.group(1)) * 1000, WELL_KNOWN_MAX_TTL_MS))
    return WELL_KNOWN_DEFAULT_TTL_MS
