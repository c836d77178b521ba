"""Filling gaps in a room's DAG from the server that sent us an event we cannot place.

The pipeline answers MISSING when it lacks an event's prev_events or auth_events. Then:

1. missing auth events: the event's auth chain from ``/event_auth``, stored as outliers;
2. missing prev_events: ``POST /get_missing_events`` from the origin, between our forward
   extremities and the event, at most ``MAX_MISSING_EVENTS`` events and no deeper back than
   ``MAX_DEPTH_SPAN`` below the event; what comes back is checked like any PDU and submitted
   with the event;
3. still a gap (it is too large): the state before each missing prev_event from ``/state_ids``,
   its events (and the prev_event itself) fetched with ``/event`` (at most ``MAX_STATE_FETCH``),
   stored as outliers, and the states after the prev_events (with ours for those we hold)
   resolved into the ``state_before`` the event is then submitted with. The missing
   prev_events become backward extremities, where backfill would continue.

A hostile origin cannot make us fetch unbounded data: every fetch is capped in count, and
each response in bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from twisted.internet.defer import DeferredSemaphore, gatherResults

from federation.receiver.pdu_checks import CheckedPdu, PduChecker
from federation.transport.client import FederationClient, FederationRequestError, federation_path
from homeserver.events.event import Event
from homeserver.events.room_versions import RoomVersion
from homeserver.events.stateres import resolve_state
from homeserver.pipeline import EventPipeline, EventResult, Outcome, RemoteEvent
from homeserver.server import Server
from storage.stores.events import EventStore
from storage.stores.room_dag import RoomDagStore
from storage.stores.state import StateGroupStore, StateKey, StateMap

logger = logging.getLogger(__name__)

#: Most events asked of /get_missing_events for one gap (Synapse asks for 10).
MAX_MISSING_EVENTS = 10
#: /get_missing_events goes no further back than this many generations below the event.
MAX_DEPTH_SPAN = 100
#: Most state and auth-chain event IDs accepted from /state_ids or /event_auth, and fetched.
MAX_STATE_FETCH = 5000
#: /event requests in flight at once while fetching state.
FETCH_CONCURRENCY = 10
#: Byte cap of each fetched response.
MAX_RESPONSE_BYTES = 50 * 1024 * 1024


class GapFiller:
    def __init__(self, hs: Server) -> None:
        self.pipeline = hs.get(EventPipeline)
        self.client = hs.get(FederationClient)
        self.checker = hs.get(PduChecker)
        self.events = hs.get(EventStore)
        self.dag = hs.get(RoomDagStore)
        self.groups = hs.get(StateGroupStore)

    async def submit(self, origin: str, room_id: str, room_version: RoomVersion,
                     events: Sequence[Event], backfilled: bool = False) -> dict[str, EventResult]:
        """Run ``events`` into the room, fetching from ``origin`` what they lack.

        ``backfilled``: history from /backfill (``EventPipeline.submit_backfill``); what lies
        behind it is not fetched (that is the next backfill), only the state before it."""
        submit = self.pipeline.submit_backfill if backfilled else self.pipeline.submit_remote
        results = _by_id(await submit(room_id, events, origin))
        pending = _missing(events, results)
        if not pending:
            return results
        # 1. auth events we lack: the auth chains, as outliers.
        if any(_lacks_auth(results[e.event_id]) for e in pending):
            for event in pending:
                if _lacks_auth(results[event.event_id]):
                    await self._fetch_auth_chain(origin, room_id, room_version, event)
        # 2. get_missing_events, submitted with the events that need them.
        fetched = [] if backfilled else await self._get_missing_events(origin, room_id, room_version, pending)
        results.update(_by_id(await submit(room_id, [*fetched, *pending], origin)))
        pending = _missing(pending, results)
        # 3. the gap is too large: the state before each event from /state_ids, lowest first.
        for event in sorted(pending, key=lambda e: e.depth):
            if results[event.event_id].outcome is not Outcome.MISSING:
                continue
            retry = _by_id(await submit(room_id, [event], origin))
            if retry[event.event_id].outcome is Outcome.MISSING:
                retry = await self._submit_with_state(origin, room_id, room_version, event, backfilled)
            results.update(retry)
        return results

    # -- get_missing_events --------------------------------------------------------------

    async def _get_missing_events(self, origin: str, room_id: str, room_version: RoomVersion,
                                  pending: Sequence[Event]) -> list[Event]:
        earliest = sorted(await self.dag.get_forward_extremities(room_id))
        latest = [e.event_id for e in pending]
        min_depth = max(0, min(e.depth for e in pending) - MAX_DEPTH_SPAN)
        body = {"earliest_events": earliest, "latest_events": latest,
                "limit": MAX_MISSING_EVENTS, "min_depth": min_depth}
        try:
            answer = await self.client.post_json(
                origin, federation_path("/_matrix/federation/v1/get_missing_events/{}", room_id), body,
                max_response_bytes=MAX_RESPONSE_BYTES)
        except FederationRequestError as exc:
            logger.info("get_missing_events from %s for %s failed: %s", origin, room_id, exc)
            return []
        raw = answer.get("events") if isinstance(answer, dict) else None
        if not isinstance(raw, list):
            return []
        checked = await self.checker.check(raw[:MAX_MISSING_EVENTS], room_version, room_id)
        wanted = set(latest)
        return [c.event for c in checked
                if isinstance(c, CheckedPdu) and c.event.event_id not in wanted and c.event.depth >= min_depth]

    # -- the state route ------------------------------------------------------------------

    async def _submit_with_state(self, origin: str, room_id: str, room_version: RoomVersion,
                                 event: Event, backfilled: bool) -> dict[str, EventResult]:
        states: list[StateMap] = []
        for prev_id in event.prev_event_ids:
            state = await self._state_after(origin, room_id, room_version, prev_id)
            if state is None:
                return {event.event_id: EventResult(event.event_id, Outcome.MISSING,
                                                    f"could not get the state at {prev_id}", (prev_id,))}
            states.append(state)
        state_before = await self._resolve(room_version, states)
        submit = self.pipeline.submit_backfill if backfilled else self.pipeline.submit_remote
        return _by_id(await submit(room_id, [RemoteEvent(event, state_before=state_before)], origin))

    async def _state_after(self, origin: str, room_id: str, room_version: RoomVersion,
                           prev_id: str) -> StateMap | None:
        """The state after ``prev_id``: ours if we hold it in the DAG, else fetched from ``origin``."""
        held = await self.events.get_event(prev_id)
        if held is not None and not held.outlier and held.state_group is not None:
            return await self.groups.get_state_ids(held.state_group)
        try:
            answer = await self.client.get_json(
                origin, federation_path("/_matrix/federation/v1/state_ids/{}", room_id),
                {"event_id": prev_id}, max_response_bytes=MAX_RESPONSE_BYTES)
        except FederationRequestError as exc:
            logger.info("state_ids from %s at %s failed: %s", origin, prev_id, exc)
            return None
        if not isinstance(answer, dict):
            return None
        pdu_ids = _id_list(answer.get("pdu_ids"))
        auth_ids = _id_list(answer.get("auth_chain_ids"))
        if pdu_ids is None or auth_ids is None or len(pdu_ids) + len(auth_ids) > MAX_STATE_FETCH:
            logger.info("state_ids from %s at %s: malformed or too large", origin, prev_id)
            return None
        stored = await self._fetch_and_store(origin, room_id, room_version, [*auth_ids, *pdu_ids, prev_id])
        state: dict[StateKey, str] = {}
        for event_id in pdu_ids:
            found = stored.get(event_id)
            if found is None or found.state_key is None:
                return None
            state[(found.type, found.state_key)] = event_id
        prev = stored.get(prev_id)
        if prev is None:
            return None
        if prev.state_key is not None and not await self._rejected(prev_id):
            state[(prev.type, prev.state_key)] = prev_id
        return state

    async def _rejected(self, event_id: str) -> bool:
        held = await self.events.get_event(event_id)
        return held is not None and held.rejected

    async def _fetch_auth_chain(self, origin: str, room_id: str, room_version: RoomVersion,
                                event: Event) -> None:
        try:
            answer = await self.client.get_json(
                origin, federation_path("/_matrix/federation/v1/event_auth/{}/{}", room_id, event.event_id),
                max_response_bytes=MAX_RESPONSE_BYTES)
        except FederationRequestError as exc:
            logger.info("event_auth from %s for %s failed: %s", origin, event.event_id, exc)
            return
        raw = answer.get("auth_chain") if isinstance(answer, dict) else None
        if not isinstance(raw, list) or len(raw) > MAX_STATE_FETCH:
            return
        checked = await self.checker.check(raw, room_version, room_id)
        held = await self.events.get_events([c.event.event_id for c in checked if isinstance(c, CheckedPdu)])
        new = [c.event for c in checked if isinstance(c, CheckedPdu) and c.event.event_id not in held]
        if new:
            await self.pipeline.store_outliers(room_id, new, origin)

    async def _fetch_and_store(self, origin: str, room_id: str, room_version: RoomVersion,
                               event_ids: Iterable[str]) -> dict[str, Event]:
        """Every event of ``event_ids``: held ones loaded, the rest fetched and stored as outliers."""
        wanted = list(dict.fromkeys(event_ids))
        held = {i: s.event for i, s in (await self.events.get_events(wanted)).items()}
        lacking = [i for i in wanted if i not in held]
        limit = DeferredSemaphore(FETCH_CONCURRENCY)
        raws = await gatherResults([limit.run(self._fetch_event, origin, i) for i in lacking])
        pairs = [(i, raw) for i, raw in zip(lacking, raws, strict=True) if raw is not None]
        checked = await self.checker.check([raw for _, raw in pairs], room_version, room_id)
        fetched = [c.event for (i, _), c in zip(pairs, checked, strict=True)
                   if isinstance(c, CheckedPdu) and c.event.event_id == i]
        if fetched:
            await self.pipeline.store_outliers(room_id, fetched, origin)
        held.update((e.event_id, e) for e in fetched)
        return held

    async def _fetch_event(self, origin: str, event_id: str) -> Any:
        try:
            answer = await self.client.get_json(
                origin, federation_path("/_matrix/federation/v1/event/{}", event_id),
                max_response_bytes=MAX_RESPONSE_BYTES)
        except FederationRequestError as exc:
            logger.info("event %s from %s failed: %s", event_id, origin, exc)
            return None
        pdus = answer.get("pdus") if isinstance(answer, dict) else None
        return pdus[0] if isinstance(pdus, list) and len(pdus) == 1 else None

    async def _resolve(self, room_version: RoomVersion, states: list[StateMap]) -> StateMap:
        distinct = [dict(s) for s in {tuple(sorted(s.items())): s for s in states}.values()]
        if len(distinct) == 1:
            return distinct[0]
        ids = {i for state in distinct for i in state.values()}
        ids |= await self.dag.get_auth_chain_ids(ids)
        loaded = await self.events.get_events(ids)
        event_map = {i: s.event for i, s in loaded.items()}
        rejected = {i for i, s in loaded.items() if s.rejected}
        return resolve_state(room_version, distinct, event_map, rejected_event_ids=rejected)


def _by_id(results: Iterable[EventResult]) -> dict[str, EventResult]:
    return {r.event_id: r for r in results}


def _missing(events: Iterable[Event], results: dict[str, EventResult]) -> list[Event]:
    return [e for e in events if results[e.event_id].outcome is Outcome.MISSING]


def _lacks_auth(result: EventResult) -> bool:
    return result.outcome is Outcome.MISSING and (result.reason or "").startswith("auth events")


def _id_list(value: Any) -> list[str] | None:
    if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
        return None
    return list(value)
