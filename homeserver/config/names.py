"""Server name grammar (spec appendix "Server Name"), used to validate config."""

from __future__ import annotations

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
