"""Which IP addresses outbound requests may reach (``ip_range_blacklist`` / ``ip_range_whitelist``).

The check runs on every address a name resolves to, at connect time, so a
name that resolves to a private address (or starts to, DNS rebinding) is
refused as surely as an IP literal.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import attrs

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Never a real destination, whatever the config says (as Synapse).
ALWAYS_BLOCKED = ("0.0.0.0/32", "::/128")


def _networks(ranges: Iterable[str]) -> tuple[IpNetwork, ...]:
    return tuple(ipaddress.ip_network(value, strict=False) for value in ranges)


def _plain(address: IpAddress) -> IpAddress:
    """IPv4-mapped and IPv4-compatible IPv6 addresses are judged as the IPv4 address they carry."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if int(address) >> 32 == 0 and int(address) > 1:
            return ipaddress.IPv4Address(int(address))
    return address


@attrs.frozen
class AddressFilter:
    """Blocked ranges, minus the ranges explicitly allowed again."""

    blocked: tuple[IpNetwork, ...]
    allowed: tuple[IpNetwork, ...] = ()

    @classmethod
    def from_ranges(cls, blacklist: Iterable[str], whitelist: Iterable[str] = ()) -> AddressFilter:
        return cls(_networks([*blacklist, *ALWAYS_BLOCKED]), _networks(whitelist))

    def allows(self, address: str | IpAddress) -> bool:
        if isinstance(address, str):
            try:
                address = ipaddress.ip_address(address.strip("[]"))
            except ValueError:
                return False
        address = _plain(address)
        if any(address in network for network in self.allowed if network.version == address.version):
            return True
        return not any(address in network for network in self.blocked if network.version == address.version)
