"""Server ACLs (``m.room.server_acl``): may a server take part in a room?  Pure.

The spec's rules: the port is ignored; with ``allow_ip_literals`` false (default true) an
IP-literal server name is denied; a match in ``deny`` denies; otherwise a server must match
``allow`` (an empty or missing ``allow`` denies everyone).  Entries are globs (``*`` any run of
characters, ``?`` one), matched case-insensitively; entries that are not strings are ignored.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Mapping
from typing import Any


def _host_of(server_name: str) -> str:
    if server_name.startswith("["):
        return server_name[: server_name.find("]") + 1] if "]" in server_name else server_name
    return server_name.rsplit(":", 1)[0] if ":" in server_name else server_name


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host[1:-1] if host.startswith("[") else host)
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=4096)
def _glob(pattern: str) -> re.Pattern[str]:
    parts = ("." if char == "?" else ".*" if char == "*" else re.escape(char) for char in pattern)
    return re.compile("".join(parts) + r"\Z", re.IGNORECASE | re.DOTALL)


def _matches_any(host: str, entries: Any) -> bool:
    if not isinstance(entries, list):
        return False
    return any(isinstance(entry, str) and _glob(entry).match(host) for entry in entries)


def server_allowed_by_acl(server_name: str, acl_content: Mapping[str, Any]) -> bool:
    host = _host_of(server_name)
    allow_ip_literals = acl_content.get("allow_ip_literals", True)
    if allow_ip_literals is False and _is_ip_literal(host):
        return False
    if _matches_any(host, acl_content.get("deny", [])):
        return False
    return _matches_any(host, acl_content.get("allow", []))
