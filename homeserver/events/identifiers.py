"""Grammar checks for Matrix identifiers (appendices: server names, user/room/event IDs, aliases).

Pure string functions; they answer "is this well formed?", never "does it exist?".
"""

from __future__ import annotations

import ipaddress
import re

from homeserver.events.room_versions import EventFormat, RoomVersion

MAX_IDENTIFIER_BYTES = 255

_PORT = r"(?::(?P<port>[0-9]{1,5}))?"
_IPV4_RE = re.compile(r"^(?P<host>[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})" + _PORT + "$")
_IPV6_RE = re.compile(r"^\[(?P<host>[0-9A-Fa-f:.]{2,45})\]" + _PORT + "$")
_DNS_RE = re.compile(r"^(?P<host>[0-9A-Za-z.-]{1,255})" + _PORT + "$")

# Current user ID localparts; historical ones may use any printable ASCII but ':'.
_USER_LOCALPART_RE = re.compile(r"^[a-z0-9._=\-/+]+$")
_HISTORICAL_USER_LOCALPART_RE = re.compile(r"^[\x21-\x39\x3b-\x7e]+$")
_URLSAFE_B64_HASH_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_STD_B64_HASH_RE = re.compile(r"^[A-Za-z0-9+/]{43}$")


def is_valid_server_name(server_name: str) -> bool:
    """The spec grammar: hostname (IPv4, [IPv6] or DNS name) with an optional port."""
    for pattern in (_IPV4_RE, _IPV6_RE, _DNS_RE):
        match = pattern.match(server_name)
        if match is None:
            continue
        host = match.group("host")
        if pattern is _IPV4_RE:
            if any(int(part) > 255 for part in host.split(".")):
                return False
        elif pattern is _IPV6_RE:
            try:
                ipaddress.IPv6Address(host)
            except ValueError:
                return False
        return True
    return False


def _split_sigil_id(identifier: str, sigil: str) -> tuple[str, str] | None:
    """Split `<sigil>localpart:server` at the first colon; None if the shape is wrong."""
    if not identifier.startswith(sigil) or ":" not in identifier:
        return None
    localpart, server_name = identifier[1:].split(":", 1)
    return localpart, server_name


def server_name_of(identifier: str) -> str:
    """The server name part of `@user:server`, `$event:server`, `!room:server` or `#alias:server`.

    Raises ValueError when there is none (for example a v3+ event ID).
    """
    if len(identifier) < 2 or ":" not in identifier:
        raise ValueError(f"identifier {identifier!r} has no server name")
    server_name = identifier.split(":", 1)[1]
    if not server_name:
        raise ValueError(f"identifier {identifier!r} has an empty server name")
    return server_name


def is_valid_user_id(user_id: str, allow_historical: bool = True) -> bool:
    """`@localpart:server_name`, at most 255 bytes.

    Historical localparts (any printable ASCII except ':') are accepted by default,
    because the spec requires tolerating them in events from other servers; new
    registrations should pass `allow_historical=False`.
    """
    parts = _split_sigil_id(user_id, "@")
    if parts is None or len(user_id.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
        return False
    localpart, server_name = parts
    pattern = _HISTORICAL_USER_LOCALPART_RE if allow_historical else _USER_LOCALPART_RE
    return bool(pattern.match(localpart)) and is_valid_server_name(server_name)


def _is_valid_opaque_localpart(localpart: str) -> bool:
    """Any non-surrogate code point except ':' and NUL."""
    return not any(ch in (":", "\x00") or 0xD800 <= ord(ch) <= 0xDFFF for ch in localpart)


def is_valid_room_alias(alias: str) -> bool:
    """`#alias:server_name`, at most 255 bytes."""
    parts = _split_sigil_id(alias, "#")
    if parts is None:
        return False
    localpart, server_name = parts
    try:
        size = len(alias.encode("utf-8"))
    except UnicodeEncodeError:
        return False
    return (
        size <= MAX_IDENTIFIER_BYTES
        and _is_valid_opaque_localpart(localpart)
        and is_valid_server_name(server_name)
    )


def is_valid_room_id(room_id: str, room_version: RoomVersion | None = None) -> bool:
    """`!opaque:server` (v1-11) or `!` + URL-safe base64 create-event hash (v12).

    Without a room version, either form is accepted.
    """
    if not room_id.startswith("!"):
        return False
    try:
        if len(room_id.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
            return False
    except UnicodeEncodeError:
        return False
    hashed = bool(_URLSAFE_B64_HASH_RE.match(room_id[1:]))
    if room_version is not None and room_version.room_id_is_create_event_hash:
        return hashed
    parts = _split_sigil_id(room_id, "!")
    with_domain = (
        parts is not None
        and bool(parts[0])
        and _is_valid_opaque_localpart(parts[0])
        and is_valid_server_name(parts[1])
    )
    if room_version is not None:
        return with_domain
    return with_domain or hashed


def is_valid_event_id(event_id: str, room_version: RoomVersion | None = None) -> bool:
    """`$opaque:server` (v1-2), `$` + std base64 hash (v3), `$` + URL-safe base64 (v4+).

    Without a room version, any of the three forms is accepted.
    """
    if not event_id.startswith("$"):
        return False
    body = event_id[1:]
    parts = _split_sigil_id(event_id, "$")
    forms = {
        EventFormat.V1: parts is not None
        and bool(parts[0])
        and _is_valid_opaque_localpart(parts[0])
        and is_valid_server_name(parts[1]),
        EventFormat.V2: bool(_STD_B64_HASH_RE.match(body)),
        EventFormat.V3: bool(_URLSAFE_B64_HASH_RE.match(body)),
    }
    if room_version is not None:
        return forms[room_version.event_format]
    return any(forms.values())
