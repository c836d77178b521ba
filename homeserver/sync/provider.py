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

from homeserver.stream_token import StreamToken


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
    ``still(since, upto, context)`` is True when an incremental ``build`` over
    (since, upto] would write nothing, known without I/O (typically: the stream
    has not moved); the builder then skips it (the fast path, builder.py).
    """

    async def prepare(self) -> None: ...

    def still(self, since: int, upto: int, context: dict[str, Any]) -> bool: ...

    async def finish(self, request: SyncRequest, response: dict[str, Any],
                     context: dict[str, Any]) -> None: ...
