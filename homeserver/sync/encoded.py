"""Room events serialised once, spliced into every reader's sync response (issue 16).

A message into a big room reaches every member in the same client form; only ``unsigned``'s
``age`` and, for the sending device, ``transaction_id`` differ. ``SharedEncoding`` holds the
JSON text of the shared part once; each reader's response carries an ``EncodedEvent`` (the
shared text plus that reader's own ``unsigned`` keys) where the event dict would be, and the
transport writes it with ``encode_spliced``, which puts the text in place without encoding the
event again. Only responses built with ``SyncBuilder.build(..., encoded=True)`` hold these;
whoever asks for that must encode with ``encode_spliced``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

import attrs

from storage.stores.events import StoredEvent

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@attrs.frozen
class SharedEncoding:
    """One event's shared client form: ``head`` is its JSON without ``unsigned`` and the closing
    brace; ``tail`` the shared ``unsigned`` keys' JSON without braces (may be empty)."""

    shared: dict[str, Any]
    head: str
    tail: str

    @classmethod
    def of(cls, shared: dict[str, Any]) -> SharedEncoding:
        without = {key: value for key, value in shared.items() if key != "unsigned"}
        unsigned = shared.get("unsigned") or {}
        return cls(shared, _dumps(without)[:-1], _dumps(unsigned)[1:-1] if unsigned else "")


@attrs.frozen(slots=True)
class EncodedEvent:
    """A reader's copy of a shared event: its own ``unsigned`` keys (age, transaction_id) on top."""

    stored: StoredEvent
    encoding: SharedEncoding
    own: dict[str, Any]

    def text(self) -> str:
        own = self.own
        parts = f'"age":{own["age"]}' if len(own) == 1 and "age" in own else _dumps(own)[1:-1]
        tail = self.encoding.tail
        if tail and parts:
            parts = f"{parts},{tail}"
        elif tail:
            parts = tail
        return f'{self.encoding.head},"unsigned":{{{parts}}}}}'

    def as_dict(self) -> dict[str, Any]:
        """The event dict ``for_reader`` would have made (the shared keys win, as there)."""
        shared = self.encoding.shared
        return {**shared, "unsigned": {**self.own, **(shared.get("unsigned") or {})}}


#: Never sent: every marker is replaced before the bytes leave. Random per process, so no
#: string a client stored can be taken for one.
_NONCE = secrets.token_hex(8)
_OPEN = f'"\\u0000{_NONCE}'
_CLOSE = '\\u0000"'


def encode_spliced(value: Any, fallback: Callable[[Any], bytes]) -> bytes:
    """UTF-8 JSON of ``value`` with each ``EncodedEvent`` in it written from its shared text.

    ``fallback`` (the transport's own encoder) gets the plain dicts instead when anything in
    the value cannot be encoded: it knows how to leave out the bad part."""
    found: list[EncodedEvent] = []

    def marker(item: Any) -> str:
        if not isinstance(item, EncodedEvent):
            raise TypeError(f"{type(item).__name__} is not JSON")
        found.append(item)
        return f"\x00{_NONCE}{len(found) - 1}\x00"

    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=marker)
        if not found:
            return text.encode("utf-8")
        pieces = text.split(_OPEN)
        if len(pieces) != len(found) + 1:
            raise ValueError("a marker collided with stored text")
        out = [pieces[0]]
        for piece in pieces[1:]:
            index, _, rest = piece.partition(_CLOSE)
            out.append(found[int(index)].text())
            out.append(rest)
        return "".join(out).encode("utf-8")
    except (UnicodeEncodeError, TypeError, ValueError):
        return fallback(materialise(value))


def materialise(value: Any) -> Any:
    """``value`` with every ``EncodedEvent`` turned back into its dict."""
    if isinstance(value, EncodedEvent):
        return value.as_dict()
    if isinstance(value, dict):
        return {key: materialise(item) for key, item in value.items()}
    if isinstance(value, list):
        return [materialise(item) for item in value]
    return value
