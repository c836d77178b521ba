"""Name resolution for outbound requests: A/AAAA (with /etc/hosts) and SRV, via twisted.names.

One resolver serves every outbound request so that the address filter always
sees the addresses that will actually be dialled.  ``outbound_dns_servers``
points it at given DNS servers (tests run their own on loopback); by default
it reads /etc/resolv.conf.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import attrs
from twisted.internet import defer
from twisted.names import client, dns, error, hosts, resolve

# Seconds to wait for each try; twisted's default (1, 3, 11, 45) would stall a request for a minute.
QUERY_TIMEOUTS = (1, 3)
HOSTS_FILE = b"/etc/hosts"


class DnsLookupError(Exception):
    """A name has no usable address records (or the lookup failed)."""


@attrs.frozen
class SrvTarget:
    host: str
    port: int
    priority: int
    weight: int


def ip_literal(host: str) -> str | None:
    """The address if ``host`` is an IPv4 or (bracketed or bare) IPv6 literal."""
    try:
        return str(ipaddress.ip_address(host[1:-1] if host.startswith("[") else host))
    except ValueError:
        return None


class HostResolver:
    """A and AAAA lookups (CNAMEs followed by the recursive server), and SRV lookups."""

    def __init__(self, reactor: Any, servers: list[tuple[str, int]] | None = None) -> None:
        if servers:
            dns_client = client.Resolver(servers=servers, timeout=QUERY_TIMEOUTS, reactor=reactor)
        else:
            dns_client = client.Resolver(resolv="/etc/resolv.conf", timeout=QUERY_TIMEOUTS, reactor=reactor)
        self._resolver = resolve.ResolverChain(
            [hosts.Resolver(file=HOSTS_FILE), dns_client]
        )

    async def resolve_host(self, host: str) -> list[str]:
        """Every IPv4 then IPv6 address of ``host`` (an IP literal resolves to itself)."""
        literal = ip_literal(host)
        if literal is not None:
            return [literal]
        results = await defer.DeferredList(
            [self._resolver.lookupAddress(host), self._resolver.lookupIPV6Address(host)], consumeErrors=True
        )
        addresses: list[str] = []
        for succeeded, result in results:
            if not succeeded:
                continue
            for record in result[0]:
                if record.type == dns.A:
                    addresses.append(socket.inet_ntop(socket.AF_INET, record.payload.address))
                elif record.type == dns.AAAA:
                    addresses.append(socket.inet_ntop(socket.AF_INET6, record.payload.address))
        if not addresses:
            raise DnsLookupError(f"{host} has no A or AAAA records")
        return list(dict.fromkeys(addresses))

    async def lookup_srv(self, name: str) -> list[SrvTarget]:
        """SRV targets in the order to try them (priority, then heavier first); [] when none exist."""
        try:
            answers, _authority, _additional = await self._resolver.lookupService(name)
        except (error.DNSNameError, error.DomainError):
            return []
        except (error.DNSQueryTimeoutError, defer.TimeoutError) as exc:
            raise DnsLookupError(f"SRV lookup of {name} timed out") from exc
        except Exception as exc:  # noqa: BLE001 - server failures, refusals, garbled answers alike
            raise DnsLookupError(f"SRV lookup of {name} failed: {exc!r}") from exc
        targets = [
            SrvTarget(str(record.payload.target).rstrip("."), record.payload.port,
                      record.payload.priority, record.payload.weight)
            for record in answers if record.type == dns.SRV
        ]
        # A single target of "." says the service is decidedly not available here.
        targets = [target for target in targets if target.host not in ("", ".")]
        return sorted(targets, key=lambda t: (t.priority, -t.weight))
