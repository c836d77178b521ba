"""Federation's ``RemoteRoomJoiner`` (homeserver/handlers/rooms/remote_rooms.py), which
homeserver/app.py registers: joins (joining.py), invites of remote users (invites.py),
leaves and knocks in rooms we are not in (outbound.py), and history from other servers
(federation/backfill.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from federation.backfill import FederationBackfiller
from federation.membership.invites import FederationInvites
from federation.membership.joining import FederationRoomJoiner
from federation.membership.outbound import FederationMembership
from homeserver.events.event import Event
from homeserver.handlers.rooms.remote_rooms import ResolvedAlias
from homeserver.server import Server


class FederationRemoteRooms:
    def __init__(self, hs: Server) -> None:
        self.joiner = hs.get(FederationRoomJoiner)
        self.invites = hs.get(FederationInvites)
        self.membership = hs.get(FederationMembership)
        self.backfiller = hs.get(FederationBackfiller)

    async def resolve_alias(self, alias: str) -> ResolvedAlias:
        return await self.joiner.resolve_alias(alias)

    async def join(self, user_id: str, room_id: str, servers: Sequence[str], content: dict[str, Any]) -> None:
        await self.joiner.join(user_id, room_id, servers, content)

    async def invite(self, event: Event) -> Event:
        return await self.invites.send_invite(event)

    async def leave(self, user_id: str, room_id: str, servers: Sequence[str], content: dict[str, Any],
                    current_event_id: str) -> None:
        await self.membership.leave(user_id, room_id, servers, content, current_event_id)

    async def knock(self, user_id: str, room_id: str, servers: Sequence[str], content: dict[str, Any]) -> None:
        await self.membership.knock(user_id, room_id, servers, content)

    async def backfill(self, room_id: str, limit: int) -> int:
        return await self.backfiller.backfill(room_id, limit)
