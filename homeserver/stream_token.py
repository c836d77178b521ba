"""The sync token: one position per stream.

It lives below both the handlers and sync because both speak it: /sync and the
WebSocket stream hand it out, and /keys/changes takes two of them.
"""

from __future__ import annotations

import attrs

from homeserver.errors import invalid_param


@attrs.frozen
class StreamToken:
    """A position in every stream: the ``since``/``next_batch`` of a sync.

    Serialised as ``<name>.<pos>~<name>.<pos>...`` sorted by stream name, so a
    token stays valid across restarts and new streams can be added later: a
    stream missing from an old token is treated as an initial sync of that
    section.
    """

    positions: dict[str, int] = attrs.field(factory=dict, hash=False)
    #: ``serialise``'s answer, kept: every connection woken by one message writes the same token.
    _text: str | None = attrs.field(default=None, init=False, eq=False, hash=False, repr=False)

    def get(self, stream: str) -> int | None:
        return self.positions.get(stream)

    def covers(self, other: StreamToken) -> bool:
        """True when every stream in ``other`` is at or before this token."""
        return all(self.positions.get(name, 0) >= pos for name, pos in other.positions.items())

    def serialise(self) -> str:
        text = self._text
        if text is None:
            text = "~".join(f"{name}.{pos}" for name, pos in sorted(self.positions.items()))
            object.__setattr__(self, "_text", text)
        return text

    @classmethod
    def parse(cls, text: str) -> StreamToken:
        """Raise ValueError on anything malformed (the API turns it into M_INVALID_PARAM)."""
        positions: dict[str, int] = {}
        for part in text.split("~"):
            name, _, pos = part.partition(".")
            if not name or not name.replace("_", "").isalpha() or not pos.isdigit():
                raise ValueError(f"bad stream token part {part!r}")
            positions[name] = int(pos)
        return cls(positions)


def parse_since(text: str | None) -> StreamToken | None:
    """The ``since`` of /sync or the WebSocket stream; empty means an initial sync."""
    if text is None or text == "":
        return None
    try:
        return StreamToken.parse(text)
    except ValueError:
        raise invalid_param("since is not a valid sync token") from None
