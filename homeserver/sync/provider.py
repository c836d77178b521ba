"""The contract between the sync builder and the per-section providers.

Each section of a sync response (rooms, to-device, device lists, account data,
presence, ...) is built by its own provider that owns one stream.  The builder
asks every provider "what changed for this device between ``since`` and
``upto``?" and merges the answers; no provider knows about the others or
about HTTP/WebSocket transports.
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs


@attrs.frozen
class StreamToken:
    """A position in every stream: the ``since``/``next_batch`` of a sync.

    Serialised as ``<name>.<pos>~<name>.<pos>...`` sorted by stream name, so a
    token stays valid across restarts and new streams can be added later: a
    stream missing from an old token is treated as an initial sync of that
    section.
    """

    positions: dict[str, int] = attrs.field(factory=dict, hash=False)

    def get(self, stream: str) -> int | None:
        return self.positions.get(stream)

    def covers(self, other: StreamToken) -> bool:
        """True when every stream in ``other`` is at or before this token."""
        return all(self.positions.get(name, 0) >= pos for name, pos in other.positions.items())

    def serialise(self) -> str:
        return "~".join(f"{name}.{pos}" for name, pos in sorted(self.positions.items()))

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


@attrs.frozen
class SyncRequest:
    """Who is syncing and how; the same for /sync and the WebSocket stream."""

    user_id: str
    device_id: str | None
    filter: dict[str, Any]
    full_state: bool = False
    since: StreamToken | None = None
    access_token_id: int | None = None


class SyncProvider(Protocol):
    """One section of the sync response, backed by one stream."""

    stream: str

    def current_position(self) -> int:
        """The stream's persisted-up-to position (never past a gap)."""

    async def build(self, request: SyncRequest, since: int | None, upto: int,
                    response: dict[str, Any], context: dict[str, Any]) -> None:
        """Write this section's changes in (since, upto] into ``response``.

        ``since`` is None for an initial sync (or a stream the client's token
        predates).  ``context`` is shared scratch space for one sync (e.g.
        the joined rooms, computed once by the rooms provider).
        """


class PreparedProvider(SyncProvider, Protocol):
    """Optional extras a provider may have; the builder checks with hasattr.

    ``prepare`` runs before ``current_position`` on each sync (e.g. to open a
    stream id generator on first use); ``finish`` runs after every provider
    has built (e.g. unread counts for each room some provider touched).
    """

    async def prepare(self) -> None: ...

    async def finish(self, request: SyncRequest, response: dict[str, Any],
                     context: dict[str, Any]) -> None: ...
