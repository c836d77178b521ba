"""Backfill from our side: when ``/messages`` pages past the oldest history we hold of a
room (its backward extremities: events cited that we never got), ask a server in the
room for what lies before them (``GET /backfill``), check it like any PDU, and hand it to
the pipeline (``submit_backfill``), which puts it into the DAG below the live stream.

Servers are tried in turn (those with members joined now, the room ID's server first for
rooms before v12), each asked once per page; at most ``MAX_BACKFILL`` events per request.
"""

from __future__ import annotations

import logging

from federation.receiver.gaps import MAX_RESPONSE_BYTES, GapFiller
from federation.receiver.pdu_checks import CheckedPdu, PduChecker
from federation.transport.client import FederationClient, federation_path, first_answer
from homeserver.events.identifiers import server_name_of
from homeserver.handlers.rooms.room_state import RoomStateHandler
from homeserver.pipeline import Outcome
from homeserver.server import Server
from storage.stores.room_dag import RoomDagStore
from storage.stores.room_members import RoomMemberStore

logger = logging.getLogger(__name__)

#: Most events asked for (and kept) per /backfill request; the spec leaves it to us.
MAX_BACKFILL = 100
#: Most backward extremities named in one request.
MAX_EXTREMITIES = 20
#: Most servers tried for one page.
MAX_SERVERS = 5
TIMEOUT_S = 30.0


class FederationBackfiller:
    def __init__(self, hs: Server) -> None:
        self.server_name: str = hs.server_name
        self.client = hs.get(FederationClient)
        self.checker = hs.get(PduChecker)
        self.gaps = hs.get(GapFiller)
        self.dag = hs.get(RoomDagStore)
        self.members = hs.get(RoomMemberStore)
        self.state = hs.get(RoomStateHandler)

    async def backfill(self, room_id: str, limit: int) -> int:
        """Fetch up to ``limit`` events before our oldest; the number of events added."""
        extremities = sorted(await self.dag.get_backward_extremities(room_id))[:MAX_EXTREMITIES]
        room_version = await self.state.get_room_version(room_id)
        if not extremities or room_version is None:
            return 0

        async def ask(server: str) -> int | None:
            """The number of events ``server`` added; None when it added none."""
            answer = await self.client.get_json(
                server, federation_path("/_matrix/federation/v1/backfill/{}", room_id),
                {"v": extremities, "limit": str(min(max(limit, 1), MAX_BACKFILL))},
                timeout_s=TIMEOUT_S, max_response_bytes=MAX_RESPONSE_BYTES)
            pdus = answer.get("pdus") if isinstance(answer, dict) else None
            if not isinstance(pdus, list):
                return None
            checked = await self.checker.check(pdus[:MAX_BACKFILL], room_version, room_id)
            events = [c.event for c in checked if isinstance(c, CheckedPdu)]
            if not events:
                return None
            results = await self.gaps.submit(server, room_id, room_version, events, backfilled=True)
            added = sum(1 for r in results.values() if r.outcome in (Outcome.ACCEPTED, Outcome.REJECTED))
            return added or None

        found = await first_answer(await self._servers(room_id), ask, f"backfill of {room_id}")
        return found.value or 0

    async def _servers(self, room_id: str) -> list[str]:
        members = await self.members.get_users_in_room(room_id)
        servers = sorted({server_name_of(m) for m in members})
        if ":" in room_id:
            servers.insert(0, room_id.split(":", 1)[1])
        return [s for s in dict.fromkeys(servers) if s != self.server_name][:MAX_SERVERS]
