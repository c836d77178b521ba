"""Canonical JSON: the byte encoding that hashes and signatures are computed over.

Encoding is delegated to the `canonicaljson` package (sorted keys, no whitespace, UTF-8,
minimal escaping). Parsing and strictness checks live here because they depend on the
room version: from v6 only integers in [-(2**53)+1, 2**53-1] are allowed.
"""

from __future__ import annotations

import json
from typing import Any

import canonicaljson

from homeserver.events.room_versions import RoomVersion

CANONICALJSON_MAX_INT = 2**53 - 1
CANONICALJSON_MIN_INT = -CANONICALJSON_MAX_INT


class CanonicalJSONError(ValueError):
    """A JSON value is not acceptable under the strict canonical JSON rules."""


def encode_canonical_json(value: Any) -> bytes:
    """The canonical JSON bytes of a value."""
    return canonicaljson.encode_canonical_json(value)


def _reject_constant(name: str) -> Any:
    raise CanonicalJSONError(f"{name} is not valid JSON")


def _parse_float(literal: str) -> int | float:
    # Canonical JSON has only integers: the spec's example turns 1e10 into
    # 10000000000. A number whose value is integral (and exactly representable)
    # is therefore an integer, however it was written.
    value = float(literal)
    if value.is_integer() and abs(value) <= CANONICALJSON_MAX_INT:
        return int(value)
    return value


def parse_json(data: str | bytes) -> Any:
    """Parse JSON text, normalising integral numbers to int and refusing NaN/Infinity.

    Raises ValueError (json.JSONDecodeError or CanonicalJSONError) on bad input.
    """
    return json.loads(data, parse_float=_parse_float, parse_constant=_reject_constant)


def check_canonical_json(value: Any, path: str = "") -> None:
    """Raise CanonicalJSONError unless the value obeys strict (v6+) canonical JSON.

    Integers must be within the safe range; floats (including NaN/Infinity) are refused.
    """
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if not CANONICALJSON_MIN_INT <= value <= CANONICALJSON_MAX_INT:
            raise CanonicalJSONError(f"integer out of range at {path or '<root>'}")
        return
    if isinstance(value, float):
        raise CanonicalJSONError(f"float not allowed at {path or '<root>'}")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalJSONError(f"non-string key at {path or '<root>'}")
            check_canonical_json(item, f"{path}.{key}" if path else key)
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_canonical_json(item, f"{path}[{index}]")
        return
    raise CanonicalJSONError(f"unsupported JSON type {type(value).__name__} at {path or '<root>'}")


def check_json_for_room_version(value: Any, room_version: RoomVersion) -> None:
    """Apply the strict rules only in room versions that enforce them (v6+)."""
    if room_version.strict_canonical_json:
        check_canonical_json(value)
