"""The one entry point for every event that enters a room, local or remote.

One worker per room takes everything queued for it, runs each submission through the
stages (homeserver/pipeline/local.py and remote.py), writes the whole batch in one
transaction, and only then answers the callers, announces the write on the "events"
stream and tells the post-persist listeners.

A local submission's events are all-or-nothing (room creation relies on it); separate
submissions batched together succeed or fail independently.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import attrs
from twisted.internet.defer import Deferred

from homeserver.errors import MatrixError
from homeserver.events.event import Event
from homeserver.pipeline.head import RoomHeads
from homeserver.pipeline.local import LocalEventBuilder
from homeserver.pipeline.out_of_band import add_out_of_band
from homeserver.pipeline.partial_state import fill_partial_state
from homeserver.pipeline.persist import BatchWriter
from homeserver.pipeline.remote import add_outlier, add_remote, order_by_prev_events
from homeserver.pipeline.types import (
    EventResult,
    EventSpec,
    NewRoom,
    PersistedBatch,
    RemoteEvent,
)
from homeserver.pipeline.wire import (
    decode_event,
    decode_new_room,
    decode_remote,
    decode_result,
    decode_spec,
    encode_event,
    encode_new_room,
    encode_remote,
    encode_result,
    encode_spec,
)
from homeserver.pipeline.work import RoomWork
from homeserver.server import Server
from storage.stores.events import EventStore, StoredEvent
from storage.stores.partial_state import PartialStateStore
from storage.stores.state import StateMap

logger = logging.getLogger(__name__)

#: Most submissions written in one transaction.
MAX_BATCH = 100

PersistedListener = Callable[[PersistedBatch], Any]


class RoomWriters(Protocol):
    """Who writes a room's events when that may be another process (event persisters:
    homeserver/replication/persisters.py implements it, docs/workers.md)."""

    def elsewhere(self, room_id: str) -> str | None:
        """The instance that owns the room, or None when it is this one."""

    async def call(self, instance: str, method: str, body: dict[str, Any]) -> Any:
        """``method``'s answer from ``instance``'s pipeline (``EventPipeline.run_forwarded``);
        its MatrixError raised here as the same error."""


@attrs.define
class _Local:
    specs: list[EventSpec]
    new_room: NewRoom | None
    deferred: Deferred[list[StoredEvent]]


@attrs.define
class _Remote:
    events: list[RemoteEvent]
    origin: str
    outliers: bool
    deferred: Deferred[list[EventResult]]


@attrs.define
class _Build:
    """Build and check a local event without writing it (``build_local``)."""

    spec: EventSpec
    deferred: Deferred[Event]


@attrs.define
class _OutOfBand:
    event: Event
    origin: str | None
    deferred: Deferred[EventResult]


@attrs.define
class _Exclusive:
    """Work on the room's DAG rows outside the stages (an admin deleting forward
    extremities): run alone in the room's worker, the cached head dropped after it."""

    work: Callable[[], Awaitable[Any]]
    deferred: Deferred[Any]


@attrs.define
class _Fill:
    """The missing state of a partial-state room, written between batches."""

    join_event_id: str
    state: StateMap
    deferred: Deferred[None]


_Submission = _Local | _Remote | _Build | _OutOfBand | _Exclusive | _Fill


class EventPipeline:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.heads = hs.get(RoomHeads)
        self.local = LocalEventBuilder(hs)
        self.writer = BatchWriter(hs, self.heads)
        self._pending: dict[str, list[_Submission]] = {}
        self._listeners: list[PersistedListener] = []
        #: Set with event persisters: rooms owned by another instance are written there.
        self.writers: RoomWriters | None = None
        self.partial_state = hs.get(PartialStateStore)

    # -- the API ---------------------------------------------------------------------

    async def submit_local(self, room_id: str, specs: Sequence[EventSpec],
                           new_room: NewRoom | None = None) -> list[StoredEvent]:
        """Build, check and persist local specs in order; all or none. Raises MatrixError."""
        owner = self._elsewhere(room_id)
        if owner is not None:
            return await self._stored(await self._call(owner, "submit_local", {
                "room_id": room_id, "specs": [encode_spec(spec) for spec in specs],
                "new_room": encode_new_room(new_room)}))
        deferred: Deferred[list[StoredEvent]] = Deferred()
        self._enqueue(room_id, _Local(list(specs), new_room, deferred))
        return await deferred

    async def submit_remote(self, room_id: str, events: Sequence[RemoteEvent | Event],
                            origin: str) -> list[EventResult]:
        """Run remote PDUs (already checked for format, signatures and hashes) into the room.

        Returns one result per event, in the order given; events are processed parents
        first. Events with a MISSING outcome wrote nothing: fetch what they lack and
        submit them again (or with ``RemoteEvent.state_before`` when the gap is too big).
        """
        wrapped = [e if isinstance(e, RemoteEvent) else RemoteEvent(e) for e in events]
        owner = self._elsewhere(room_id)
        if owner is not None:
            return await self._results(owner, "submit_remote", room_id, wrapped, origin)
        deferred: Deferred[list[EventResult]] = Deferred()
        self._enqueue(room_id, _Remote(wrapped, origin, False, deferred))
        return await deferred

    async def submit_backfill(self, room_id: str, events: Sequence[RemoteEvent | Event],
                              origin: str) -> list[EventResult]:
        """History from ``/backfill`` (checked like any PDU): into the DAG below what we hold,
        with negative stream orderings, leaving the forward extremities and the current state
        alone. Events whose prev_events we lack are MISSING unless given ``state_before``."""
        wrapped = [attrs.evolve(e, backfilled=True) if isinstance(e, RemoteEvent) else RemoteEvent(e, backfilled=True)
                   for e in events]
        owner = self._elsewhere(room_id)
        if owner is not None:
            return await self._results(owner, "submit_backfill", room_id, wrapped, origin)
        deferred: Deferred[list[EventResult]] = Deferred()
        self._enqueue(room_id, _Remote(wrapped, origin, False, deferred))
        return await deferred

    async def store_outliers(self, room_id: str, events: Sequence[Event], origin: str) -> list[EventResult]:
        """Store events without their state (auth chains, state from /state_ids, /event).

        Each is checked against its own auth_events only; a failure stores it as rejected.
        A later ``submit_remote`` of the same event de-outliers it.
        """
        owner = self._elsewhere(room_id)
        if owner is not None:
            return await self._results(owner, "store_outliers", room_id, [RemoteEvent(e) for e in events], origin)
        deferred: Deferred[list[EventResult]] = Deferred()
        self._enqueue(room_id, _Remote([RemoteEvent(e) for e in events], origin, True, deferred))
        return await deferred

    async def build_local(self, room_id: str, spec: EventSpec) -> Event:
        """A local event built and checked as ``submit_local`` would, but not written.

        For an event another server must sign first (an invite of its user): send it
        there, then hand the signed event back as ``EventSpec(prebuilt=...)`` to
        ``submit_local``, which checks it again against the room as it is then.
        """
        owner = self._elsewhere(room_id)
        if owner is not None:
            answer = await self._call(owner, "build_local", {"room_id": room_id, "spec": encode_spec(spec)})
            return decode_event(answer)
        deferred: Deferred[Event] = Deferred()
        self._enqueue(room_id, _Build(spec, deferred))
        return await deferred

    async def store_out_of_band_membership(self, event: Event, origin: str | None) -> EventResult:
        """A local user's invite, knock or leave in a room none of our users is joined to
        (pipeline/out_of_band.py): stored as an outlier with a stream position, and the
        user's membership set from it. REFUSED when a user of ours is joined (then the
        event reaches us through the room) or it is not such a membership."""
        owner = self._elsewhere(event.room_id)
        if owner is not None:
            answer = await self._call(owner, "store_out_of_band_membership", {
                "room_id": event.room_id, "event": encode_event(event), "origin": origin})
            return decode_result(answer)
        deferred: Deferred[EventResult] = Deferred()
        self._enqueue(event.room_id, _OutOfBand(event, origin, deferred))
        return await deferred

    async def run_exclusive(self, room_id: str, work: Callable[[], Awaitable[Any]]) -> Any:
        """``await work()`` while no batch of the room is being built or written, then reload
        the room's head from the database: for changes to the DAG tables the pipeline owns."""
        deferred: Deferred[Any] = Deferred()
        self._enqueue(room_id, _Exclusive(work, deferred))
        return await deferred

    async def complete_partial_state(self, room_id: str, join_event_id: str, state: StateMap) -> None:
        """Fill a partial-state room's state with what the resync fetched (every event of
        ``state`` already stored, as outliers) and mark the room complete
        (pipeline/partial_state.py)."""
        deferred: Deferred[None] = Deferred()
        self._enqueue(room_id, _Fill(join_event_id, dict(state), deferred))
        await deferred

    def add_persisted_listener(self, listener: PersistedListener) -> None:
        """``listener(batch)`` after each commit (push rules, the federation sender...).

        A listener returning an awaitable runs in the background; its failure is logged
        and never affects the batch, which is already durable.
        """
        self._listeners.append(listener)

    # -- rooms another process writes (event persisters) --------------------------------

    def _elsewhere(self, room_id: str) -> str | None:
        return self.writers.elsewhere(room_id) if self.writers is not None else None

    async def _call(self, owner: str, method: str, body: dict[str, Any]) -> Any:
        assert self.writers is not None
        return await self.writers.call(owner, method, body)

    async def _stored(self, event_ids: list[str]) -> list[StoredEvent]:
        """The events another process persisted, read back (they are committed)."""
        found = await self.hs.get(EventStore).get_events(event_ids)
        return [found[event_id] for event_id in event_ids]

    async def _results(self, owner: str, method: str, room_id: str, events: list[RemoteEvent],
                       origin: str) -> list[EventResult]:
        answer = await self._call(owner, method, {
            "room_id": room_id, "events": [encode_remote(e) for e in events], "origin": origin})
        return [decode_result(result) for result in answer]

    async def run_forwarded(self, method: str, body: dict[str, Any]) -> Any:
        """A submission another process handed us for a room we own: its answer as JSON.

        Runs here whatever our own view of the owner is, so two processes that disagree
        can never pass a submission back and forth."""
        room_id = str(body["room_id"])
        if method == "submit_local":
            local: Deferred[list[StoredEvent]] = Deferred()
            specs = [decode_spec(spec) for spec in body["specs"]]
            self._enqueue(room_id, _Local(specs, decode_new_room(body.get("new_room")), local))
            return [stored.event_id for stored in await local]
        if method == "build_local":
            built: Deferred[Event] = Deferred()
            self._enqueue(room_id, _Build(decode_spec(body["spec"]), built))
            return encode_event(await built)
        if method == "store_out_of_band_membership":
            single: Deferred[EventResult] = Deferred()
            self._enqueue(room_id, _OutOfBand(decode_event(body["event"]), body.get("origin"), single))
            return encode_result(await single)
        if method not in ("submit_remote", "submit_backfill", "store_outliers"):
            raise KeyError(method)
        results: Deferred[list[EventResult]] = Deferred()
        events = [decode_remote(e) for e in body["events"]]
        self._enqueue(room_id, _Remote(events, str(body["origin"]), method == "store_outliers", results))
        return [encode_result(result) for result in await results]

    # -- the worker --------------------------------------------------------------------

    def _enqueue(self, room_id: str, submission: _Submission) -> None:
        queue = self._pending.get(room_id)
        if queue is None:
            self._pending[room_id] = [submission]
            Deferred.fromCoroutine(self._run(room_id))
        else:
            queue.append(submission)

    async def _run(self, room_id: str) -> None:
        try:
            while True:
                queue = self._pending.get(room_id, [])
                if not queue:
                    return
                if isinstance(queue[0], _Exclusive):
                    self._pending[room_id] = queue[1:]
                    await self._exclusive(room_id, queue[0])
                    continue
                batch = _next_batch(queue)
                self._pending[room_id] = queue[len(batch):]
                try:
                    if isinstance(batch[0], _Fill):
                        fill = batch[0]
                        await fill_partial_state(self.hs, self.heads, room_id, fill.join_event_id, fill.state)
                        fill.deferred.callback(None)
                    else:
                        await self._process(room_id, batch)
                except Exception as exc:  # keep the worker alive; fail what it held
                    logger.exception("room %s: persisting a batch failed", room_id)
                    self.heads.forget(room_id)
                    _fail(batch, exc)
        finally:
            # Normally empty; never leave submissions behind with no worker to run them.
            _fail(self._pending.pop(room_id, []), RuntimeError("event pipeline worker stopped"))

    async def _process(self, room_id: str, batch: list[_Submission]) -> None:
        head = await self.heads.load(room_id)
        work = RoomWork(self.hs, room_id, head.copy() if head is not None else None)
        work.partial = await self.partial_state.is_partial(room_id)
        answers: list[tuple[_Submission, Any]] = []
        for submission in batch:
            mark = work.mark()
            try:
                if isinstance(submission, _Local):
                    items = [await self.local.add(work, spec, submission.new_room) for spec in submission.specs]
                    answers.append((submission, items))
                elif isinstance(submission, _Build):
                    built = await self.local.add(work, submission.spec, None)
                    work.rollback(mark)
                    answers.append((submission, built.event))
                elif isinstance(submission, _OutOfBand):
                    answers.append((submission, await add_out_of_band(
                        work, submission.event, submission.origin, self.hs.server_name)))
                elif isinstance(submission, _Remote):
                    answers.append((submission, await self._remote(work, submission)))
            except Exception as exc:
                work.rollback(mark)
                if not isinstance(exc, MatrixError):
                    logger.exception("room %s: a submission failed", room_id)
                submission.deferred.errback(exc)
        if not work.items:
            for submission, answer in answers:
                empty: Any = [] if isinstance(submission, _Local) else answer
                submission.deferred.callback(empty)
            return
        persisted = await self.writer.write(work)
        # Listeners first: a caller resumed by its answer must find their work queued.
        self._tell_listeners(persisted)
        by_id = {p.stored.event_id: p.stored for p in persisted.events}
        for submission, answer in answers:
            if isinstance(submission, _Local):
                submission.deferred.callback([by_id[item.event.event_id] for item in answer])
            else:
                submission.deferred.callback(answer)

    async def _exclusive(self, room_id: str, submission: _Exclusive) -> None:
        try:
            result = await submission.work()
        except Exception as exc:
            self.heads.forget(room_id)
            submission.deferred.errback(exc)
        else:
            self.heads.forget(room_id)
            submission.deferred.callback(result)

    async def _remote(self, work: RoomWork, submission: _Remote) -> list[EventResult]:
        results: dict[str, EventResult] = {}
        for remote in order_by_prev_events(submission.events):
            if submission.outliers:
                result = await add_outlier(work, remote.event, submission.origin)
            else:
                result = await add_remote(work, remote, submission.origin)
            results[remote.event.event_id] = result
        return [results[e.event.event_id] for e in submission.events]

    def _tell_listeners(self, batch: PersistedBatch) -> None:
        for listener in self._listeners:
            try:
                outcome = listener(batch)
                if inspect.isawaitable(outcome):
                    Deferred.fromCoroutine(_logged(outcome, listener))
            except Exception:
                logger.exception("post-persist listener %r failed", listener)


def _next_batch(queue: list[_Submission]) -> list[_Submission]:
    """A fill alone, else the submissions up to the next fill (at most MAX_BATCH)."""
    if isinstance(queue[0], _Fill):
        return queue[:1]
    batch: list[_Submission] = []
    for submission in queue[:MAX_BATCH]:
        if isinstance(submission, (_Fill, _Exclusive)):
            break
        batch.append(submission)
    return batch


async def _logged(awaitable: Any, listener: PersistedListener) -> None:
    try:
        await awaitable
    except Exception:
        logger.exception("post-persist listener %r failed", listener)


def _fail(submissions: list[_Submission], exc: Exception) -> None:
    for submission in submissions:
        if not submission.deferred.called:
            submission.deferred.errback(exc)
