"""Completing a room joined with partial state (MSC3706), in the background.

The join answered with ``members_omitted`` left most ``m.room.member`` events out of the
room's state. This asks the servers ``send_join`` named (the one that answered first, then
``servers_in_room``) for the state before our join: ``/state_ids`` at the join, then ``/state``
for the events we do not hold (one request for the whole member list, not one ``/event`` per
member). Those pass the receiver's checks and are stored as outliers (each checked against
its own auth events; rejected ones stay out), then the pipeline fills them into the room
(homeserver/pipeline/partial_state.py) and the room is whole. A server that fails is skipped;
when all fail, the round is tried again later, with a growing pause. Rooms still partial at
start-up resume (``resume``, from ``HomeServer.start_background_work``).
"""

from __future__ import annotations

import logging
from typing import Any

from twisted.internet import task
from twisted.internet.defer import Deferred

from federation.membership.pdus import checked_events
from federation.receiver.pdu_checks import PduChecker
from federation.transport.client import (
    FederationClient,
    FederationRequestError,
    federation_path,
    first_answer,
)
from homeserver.handlers.rooms.partial_state import PartialStateRooms
from homeserver.pipeline import EventPipeline, Outcome
from homeserver.server import Server
from storage.stores.events import EventStore, StoredEvent
from storage.stores.partial_state import PartialStateRoom, PartialStateStore
from storage.stores.state import StateMap

logger = logging.getLogger(__name__)

#: Byte cap of a /state answer: a big room's members and their auth chain.
MAX_STATE_BYTES = 200 * 1024 * 1024
#: Most state and auth-chain IDs taken from /state_ids.
MAX_STATE_IDS = 200_000
STATE_TIMEOUT_S = 120.0
#: Pause after a round in which no server answered, doubling up to the cap.
FIRST_RETRY_S = 2.0
MAX_RETRY_S = 300.0


class ResyncError(Exception):
    """One server did not give us the state we asked for."""


class PartialStateResync:
    def __init__(self, hs: Server) -> None:
        self.server_name: str = hs.server_name
        self.reactor = hs.reactor
        self.store = hs.get(PartialStateStore)
        self.rooms = hs.get(PartialStateRooms)
        self.client = hs.get(FederationClient)
        self.checker = hs.get(PduChecker)
        self.pipeline = hs.get(EventPipeline)
        self.events = hs.get(EventStore)
        self._running: set[str] = set()

    async def resume(self) -> None:
        """Start the resync of every room a restart left partial."""
        for room in await self.store.get_all():
            self.start(room.room_id)

    def start(self, room_id: str) -> None:
        if room_id in self._running:
            return
        self._running.add(room_id)
        done = Deferred.fromCoroutine(self._run(room_id))
        done.addErrback(lambda failure: logger.error("resyncing %s failed: %s", room_id, failure.getTraceback()))
        done.addBoth(lambda _: self._running.discard(room_id))

    async def _run(self, room_id: str) -> None:
        pause = FIRST_RETRY_S
        while True:
            room = await self.store.get(room_id)
            if room is None:
                return
            join = await self.events.get_event(room.join_event_id)
            if join is None or join.outlier or join.rejected or join.soft_failed:
                logger.info("%s: our partial-state join %s never entered the room", room_id, room.join_event_id)
                await self.store.remove(room_id)
                self.rooms.completed(room_id)
                return
            if await self._one_round(room, join):
                self.rooms.completed(room_id)
                return
            logger.info("%s: no server gave the room's state; trying again in %.0f s", room_id, pause)
            await task.deferLater(self.reactor, pause, lambda: None)
            pause = min(pause * 2, MAX_RETRY_S)

    async def _one_round(self, room: PartialStateRoom, join: StoredEvent) -> bool:
        async def ask(server: str) -> StateMap:
            return await self._state_from(server, room.room_id, join)

        found = await first_answer([room.joined_via, *room.servers], ask, f"the state of {room.room_id}",
                                   retry_on=(FederationRequestError, ResyncError), skip=self.server_name)
        if found.value is None:
            return False
        await self.pipeline.complete_partial_state(room.room_id, join.event_id, found.value)
        logger.info("%s: state complete (%d entries from %s)", room.room_id, len(found.value), found.server)
        return True

    async def _state_from(self, server: str, room_id: str, join: StoredEvent) -> StateMap:
        """The state before our join as ``server`` holds it, every event of it stored here."""
        path = federation_path("/_matrix/federation/v1/state_ids/{}", room_id)
        answer = await self.client.get_json(server, path, {"event_id": join.event_id},
                                            timeout_s=STATE_TIMEOUT_S, max_response_bytes=MAX_STATE_BYTES)
        state_ids = _id_list(answer, "pdu_ids")
        held = await self.events.get_events(state_ids)
        if any(i not in held for i in state_ids):
            await self._fetch_state(server, room_id, join)
            held = await self.events.get_events(state_ids)
        state: StateMap = {}
        for event_id in state_ids:
            stored = held.get(event_id)
            if stored is None:
                raise ResyncError(f"{event_id} of the state could not be had")
            if stored.rejected or stored.event.state_key is None:
                continue
            state[(stored.event.type, stored.event.state_key)] = event_id
        if ("m.room.create", "") not in state:
            raise ResyncError("the state has no m.room.create")
        return state

    async def _fetch_state(self, server: str, room_id: str, join: StoredEvent) -> None:
        path = federation_path("/_matrix/federation/v1/state/{}", room_id)
        answer = await self.client.get_json(server, path, {"event_id": join.event_id},
                                            timeout_s=STATE_TIMEOUT_S, max_response_bytes=MAX_STATE_BYTES)
        if not isinstance(answer, dict) or not isinstance(answer.get("pdus"), list) \
                or not isinstance(answer.get("auth_chain"), list):
            raise ResyncError("a malformed /state answer")
        room_version = join.event.room_version
        chain = await checked_events(self.checker, answer["auth_chain"], room_version, room_id)
        pdus = await checked_events(self.checker, answer["pdus"], room_version, room_id)
        wanted = {e.event_id: e for e in [*chain, *pdus]}
        held = await self.events.get_events(wanted)
        new = [e for i, e in wanted.items() if i not in held]
        if not new:
            return
        results = await self.pipeline.store_outliers(room_id, new, server)
        missing = [r for r in results if r.outcome is Outcome.MISSING]
        if missing:
            logger.info("%s: %d state events from %s lack their auth events", room_id, len(missing), server)


def _id_list(answer: Any, name: str) -> list[str]:
    value = answer.get(name) if isinstance(answer, dict) else None
    if not isinstance(value, list) or not all(isinstance(i, str) for i in value) or len(value) > MAX_STATE_IDS:
        raise ResyncError(f"a malformed /state_ids answer ({name})")
    return value
