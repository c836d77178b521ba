"""Self-destructing messages: the content keys (MSC2228's, in the cleartext of the content,
so they work for ``m.room.encrypted`` too) and their parsing. Pure: no I/O, no clock.

- ``org.matrix.self_destruct_after``: an absolute time (ms since the epoch) when the event
  is expunged.
- ``org.matrix.self_destruct``: ms after every joined member other than the sender has read
  the event (a read receipt at or after it).

Both may be given; the event is expunged at whichever comes first.
"""

from __future__ import annotations

from typing import Any

import attrs

SELF_DESTRUCT_AFTER = "org.matrix.self_destruct_after"
SELF_DESTRUCT = "org.matrix.self_destruct"
#: The largest integer canonical JSON allows.
MAX_SAFE_INTEGER = 2**53 - 1


class SelfDestructError(ValueError):
    """The keys are present but malformed; ``errcode`` is the Matrix error to answer with."""

    def __init__(self, errcode: str, message: str) -> None:
        super().__init__(message)
        self.errcode = errcode


@attrs.frozen(slots=True)
class SelfDestruct:
    #: Absolute expiry (ms since the epoch), or None.
    at_ts: int | None
    #: Expiry this long after everyone has read it, or None.
    after_read_ms: int | None


def _integer(content: dict[str, Any], key: str) -> int | None:
    if key not in content:
        return None
    value = content[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise SelfDestructError("M_BAD_JSON", f"{key} must be an integer (milliseconds)")
    if value < 0:
        raise SelfDestructError("M_INVALID_PARAM", f"{key} may not be negative")
    if value > MAX_SAFE_INTEGER:
        raise SelfDestructError("M_INVALID_PARAM", f"{key} is too large")
    return value


def parse_self_destruct(content: dict[str, Any], now_ms: int | None = None) -> SelfDestruct | None:
    """The event's self-destruct request, or None. Raises SelfDestructError when malformed,
    and (given ``now_ms``, as at send time) when the absolute time is not in the future."""
    at_ts = _integer(content, SELF_DESTRUCT_AFTER)
    after_read = _integer(content, SELF_DESTRUCT)
    if at_ts is None and after_read is None:
        return None
    if at_ts is not None and now_ms is not None and at_ts <= now_ms:
        raise SelfDestructError("M_INVALID_PARAM", f"{SELF_DESTRUCT_AFTER} is in the past")
    return SelfDestruct(at_ts, after_read)


def self_destruct_of(content: dict[str, Any]) -> SelfDestruct | None:
    """Lenient form for stored events (remote ones included): malformed keys mean none."""
    try:
        return parse_self_destruct(content)
    except SelfDestructError:
        return None


def thread_of(content: dict[str, Any]) -> str | None:
    """The thread root an event belongs to, if it is a thread reply."""
    relates = content.get("m.relates_to")
    if isinstance(relates, dict) and relates.get("rel_type") == "m.thread":
        root = relates.get("event_id")
        return root if isinstance(root, str) else None
    return None
