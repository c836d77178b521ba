"""The hook through which membership reaches rooms on other servers.

Handlers may not import federation (tests/test_layering.py), yet joining a room we are
not in needs it, and so do inviting a user of another server, rejecting a remote invite
and knocking. So the membership handler asks ``hs.get(RemoteRooms).joiner``, a
``RemoteRoomJoiner`` that homeserver/app.py registers at start-up with federation's
implementation (federation/membership/remote.py). Without one (tests that build a bare
server), remote rooms stay 404.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import attrs

from homeserver.events.event import Event
from homeserver.server import Server


@attrs.frozen
class ResolvedAlias:
    room_id: str
    servers: tuple[str, ...]


class RemoteRoomJoiner(Protocol):
    async def resolve_alias(self, alias: str) -> ResolvedAlias:
        """Ask the alias's server (``/query/directory``); MatrixError 404 when it has none."""
        ...

    async def join(self, user_id: str, room_id: str, servers: Sequence[str], content: dict[str, Any]) -> None:
        """Join through the first of ``servers`` that answers, and hold the room from then on.

        Raises MatrixError (404 when no server knows the room, 403 when refused)."""
        ...

    async def invite(self, event: Event) -> Event:
        """Our invite of a remote user, signed by the invitee's server too (MatrixError if refused)."""
        ...

    async def leave(self, user_id: str, room_id: str, servers: Sequence[str], content: dict[str, Any],
                    current_event_id: str) -> None:
        """Reject an invite or take back a knock in a room we are not in: through the first of
        ``servers`` that takes it, else locally; kept as an out-of-band membership."""
        ...

    async def knock(self, user_id: str, room_id: str, servers: Sequence[str], content: dict[str, Any]) -> None:
        """Knock through the first of ``servers`` that answers (MatrixError otherwise)."""
        ...

    async def backfill(self, room_id: str, limit: int) -> int:
        """Fetch up to ``limit`` events from before the oldest we hold; how many were added."""
        ...


class RemoteRooms:
    """Holds the registered joiner (one per process)."""

    def __init__(self, hs: Server) -> None:
        self.joiner: RemoteRoomJoiner | None = None
