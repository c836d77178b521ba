"""Server name grammar (spec appendix "Server Name"), used to validate config."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re

_DNS_NAME = re.compile(r"^[A-Za-z0-9.-]{1,255}$")


def split_server_name(name: str) -> tuple[str, int | None]:
    """Split ``host[:port]``; raise ValueError when the grammar is not met."""
    if name.startswith("["):
        end = name.find("]")
        if end == -1:
            raise ValueError("unterminated IPv6 literal")
        host, rest = name[: end + 1], name[end + 1 :]
        ipaddress.IPv6Address(host[1:-1])
    else:
        host, _, port_text = name.partition(":")
        rest = f":{port_text}" if _ else ""
        if not _DNS_NAME.match(host):
            raise ValueError("bad host name")
    if not rest:
        return host, None
    if not rest.startswith(":") or not rest[1:].isdigit() or len(rest) > 6:
        raise ValueError("bad port")
    port = int(rest[1:])
    if not 0 < port < 65536:
        raise ValueError("bad port")
    return host, port


def server_name_problem(name: str) -> str | None:
    try:
        split_server_name(name)
    except ValueError:
        return f"expected a server name such as example.com or example.com:8448, got {name!r}"
    return None


_KEY_ID = re.compile(r"^ed25519:[A-Za-z0-9_]{1,255}$")


def key_id_problem(key_id: str) -> str | None:
    """Signing key IDs are ``ed25519:`` then a version of ``[A-Za-z0-9_]``."""
    if _KEY_ID.match(key_id):
        return None
    return f"expected a key ID such as ed25519:a_AbCd, got {key_id!r}"


def public_key_problem(key: str) -> str | None:
    """An ed25519 public key in (padded or unpadded) base64: 32 bytes."""
    try:
        raw = base64.b64decode(key + "=" * (-len(key) % 4), validate=True)
    except (ValueError, binascii.Error):
        raw = b""
    if len(raw) == 32:
        return None
    return f"expected a base64 ed25519 public key (32 bytes), got {key!r}"


def split_dns_server(value: str) -> tuple[str, int]:
    """``ip`` or ``ip:port`` (``[v6]:port`` for IPv6); the port defaults to 53."""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    else:
        host, port = value, "53"
    ipaddress.ip_address(host)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("bad port")
    return host, int(port)


def dns_server_problem(value: str) -> str | None:
    try:
        split_dns_server(value)
    except ValueError:
        return f"expected a DNS server address such as 127.0.0.1 or 127.0.0.1:5353, got {value!r}"
    return None
