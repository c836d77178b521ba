"""The transaction sender: one persisted queue per destination, one transaction in flight each.

- PDUs: every local event the pipeline accepts is queued (a row per destination, in
  federation_pdu_queue) for every other server in the room, after the commit.
- EDUs: receipts, presence and ``send_edu`` callers are queued in federation_edu_queue
  (keyed ones replace their predecessor); to-device messages sit in
  device_federation_outbox, written by the to-device handler; typing lives in memory
  only (it means nothing after a restart).
- Each destination sends transactions of at most 50 PDUs and 100 EDUs, one at a time,
  deleting what a transaction carried once the destination answered 200. A failure
  backs off (backoff.py, persisted in federation_destinations) and keeps the queue.
- Catch-up: nothing is dropped while a destination is down, so when it is back it is
  sent every event it missed, oldest first, in full transactions. Events also cite
  their prev_events, so a server that lost some anyway fills the gap itself.
- At start-up, local events after the last fully queued events-stream position are
  queued again (whatever a crash interrupted between commit and queueing), and every
  destination with something queued is woken.
- Workers (docs/workers.md): in a federation sender worker the events come from the
  replicated events stream instead of the pipeline (replicated.py); in the processes that
  do not send, ``handover`` replaces the local wake-up, so what they queue (to the shared
  tables) is sent by the sender process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall

from federation.sender.backoff import after_failure, remaining_ms
from federation.sender.destinations import (
    allowed_by_acl,
    membership_target_server,
    servers_in_room,
    servers_of,
)
from federation.transport.auth import FederationAuth
from federation.transport.client import (
    FederationClient,
    FederationDeniedError,
    FederationRequestError,
    federation_path,
)
from homeserver.events.identifiers import server_name_of
from homeserver.metrics import FEDERATION_SENT_TRANSACTIONS
from homeserver.pipeline import EventPipeline, PersistedBatch
from homeserver.pipeline.head import RoomHeads
from homeserver.server import Server
from storage.stores.events import EventStore
from storage.stores.federation_queue import FederationQueueStore, QueuedPdu, RetryTimings
from storage.stores.partial_state import PartialStateStore
from storage.streams import Streams

logger = logging.getLogger(__name__)

MAX_PDUS = 50
MAX_EDUS = 100
SEND_TIMEOUT_S = 60.0
RESCAN_BATCH = 500
#: Answers after which a transaction is dropped rather than retried: the destination
#: refused it for what it is (Synapse does the same). 401, 404, 408 and 429 are retried.
PERMANENT_CODES = frozenset({400, 403, 405, 413, 414})


@attrs.define
class _Destination:
    name: str
    sending: bool = False
    again: bool = False
    loaded: bool = False
    retry: RetryTimings | None = None
    timer: IDelayedCall | None = None
    #: Typing EDUs: in memory only, one per key, sent with the next transaction.
    ephemeral: dict[str, tuple[str, dict[str, Any]]] = attrs.field(factory=dict)


@attrs.frozen
class _Transaction:
    pdus: list[int]
    pdu_json: list[dict[str, Any]]
    edus: list[int]
    to_device: list[int]
    ephemeral: dict[str, tuple[str, dict[str, Any]]]
    edu_json: list[dict[str, Any]]


class FederationSender:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.server_name: str = hs.server_name
        self.reactor = hs.reactor
        self.config = hs.config.federation
        self.store = hs.get(FederationQueueStore)
        self.events = hs.get(EventStore)
        self.client = hs.get(FederationClient)
        self._destinations: dict[str, _Destination] = {}
        self._batches: list[tuple[PersistedBatch, set[str] | None, int]] = []
        self._queueing = False
        self._caught_up = False
        self._started = False
        self._stopped = False
        self._txn_prefix = str(int(time.time() * 1000))
        self._txn_counter = 0
        #: How far _queue_missed_events has queued (None: read it from the database).
        self._queued_upto: int | None = None
        #: Set in a process that does not send: tells the sender process to look at a queue.
        self.handover: Callable[[str], None] | None = None

    # -- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Listen to the pipeline and to inbound requests, queue what a crash left, wake everyone."""
        if self._started:
            return
        self._started = True
        streams = self.hs.get(Streams)
        # Where this process writes every event, the pipeline tells us of each; otherwise
        # (a sender worker, or event persisters) replicated.py follows the events stream.
        follows = self.follows_events_stream()
        if not follows:
            self.hs.get(EventPipeline).add_persisted_listener(self._on_persisted)
        self.hs.get(FederationAuth).on_authenticated.append(self.on_peer_contact)
        # Following, only what every writer has been heard to finish is surely committed.
        await self._queue_missed_events(streams.current_position("events") if follows else None)
        self._caught_up = True
        self._kick_queueing()
        for destination in await self.store.destinations_with_pending():
            self.wake(destination)

    def follows_events_stream(self) -> bool:
        """Whether our PDUs come from the events stream (replicated.py), not the pipeline:
        in a process that writes no events, or one of several writers (persisters), whose
        own pipeline sees only its rooms."""
        streams = self.hs.get(Streams)
        return not streams.writes_here("events") or streams.is_sharded("events")

    def stop(self) -> None:
        self._stopped = True
        for queue in self._destinations.values():
            if queue.timer is not None and queue.timer.active():
                queue.timer.cancel()

    # -- the public API -----------------------------------------------------------------

    async def send_edu(self, destination: str, edu_type: str, content: dict[str, Any],
                       key: str | None = None) -> None:
        """Queue an EDU (persisted); a keyed one replaces a queued EDU of the same type and key."""
        if not self._may_send_to(destination):
            return
        await self.store.queue_edu(destination, edu_type, content, key)
        self.wake(destination)

    async def forward(self, room_id: str, event_id: str, origin: str) -> None:
        """Pass on an event that ``origin`` handed to us alone (``send_join``, ``send_leave``,
        ``send_knock``) to the other servers in the room: only the resident server has it."""
        stored = (await self.events.get_events([event_id])).get(event_id)
        if stored is None:
            return
        rows = [row for row in await self._rows_for(room_id, [(stored.stream_ordering, stored.event)])
                if row.destination != origin]
        await self.store.queue_pdus(rows)
        for destination in {row.destination for row in rows}:
            self.wake(destination)

    def send_ephemeral_edu(self, destination: str, edu_type: str, content: dict[str, Any], key: str) -> None:
        """Queue an EDU in memory only (typing): lost on restart, replaced by a newer one."""
        if not self._may_send_to(destination):
            return
        queue = self._queue(destination)
        queue.ephemeral.pop(key, None)
        queue.ephemeral[key] = (edu_type, content)
        self.wake(destination)

    def wake(self, destination: str) -> None:
        """Something was queued for ``destination``: send it unless busy or backing off."""
        if self._stopped or not self._may_send_to(destination):
            return
        if self.handover is not None:
            self.handover(destination)
            return
        queue = self._queue(destination)
        if queue.sending:
            queue.again = True
            return
        if queue.timer is not None and queue.timer.active():
            return
        Deferred.fromCoroutine(self._run(queue))

    async def on_peer_contact(self, origin: str) -> None:
        """``origin`` just reached us with a valid signature: it is up, so stop backing off."""
        queue = self._queue(origin)
        if not queue.loaded:  # one read per origin; from then on memory knows
            timings = await self.store.get_retry(origin)
            if not queue.loaded:
                queue.loaded, queue.retry = True, timings
        if queue.retry is None or queue.retry.retry_interval <= 0:
            return
        logger.info("%s contacted us: retrying it now", origin)
        queue.retry = None
        await self.store.mark_success(origin, _now_ms())
        if queue.timer is not None and queue.timer.active():
            queue.timer.cancel()
        queue.timer = None
        self.wake(origin)

    def _may_send_to(self, destination: str) -> bool:
        return destination != self.server_name and self.client.may_contact(destination)

    def _queue(self, destination: str) -> _Destination:
        queue = self._destinations.get(destination)
        if queue is None:
            queue = self._destinations[destination] = _Destination(destination)
        return queue

    # -- queueing PDUs --------------------------------------------------------------------

    def _on_persisted(self, batch: PersistedBatch) -> None:
        # Every batch whose ids are at or below the events token has reached this listener
        # (the pipeline calls it as the ids finish), so once this batch is queued, the
        # token is a position up to which everything is queued.
        if not batch.local_events():
            return
        # The servers in the room right after this batch (queueing runs later, when the
        # membership may have moved on); from the tables when the head is not in memory.
        head = self.hs.get(RoomHeads).cached(batch.room_id)
        if self.hs.get(PartialStateStore).maybe_partial(batch.room_id):
            head = None  # most members are unknown yet: servers_in_room adds send_join's list
        servers = None if head is None else \
            servers_of(u for u, m in head.memberships.items() if m == "join") - {self.server_name}
        self._batches.append((batch, servers, self.hs.get(Streams).current_position("events")))
        self._kick_queueing()

    def _kick_queueing(self) -> None:
        if self._caught_up and not self._queueing and self._batches:
            Deferred.fromCoroutine(self._queue_batches())

    async def _queue_batches(self) -> None:
        self._queueing = True
        try:
            while self._batches and not self._stopped:
                batch, servers, position = self._batches.pop(0)
                try:
                    rows = await self._rows_for(batch.room_id, [(s.stream_ordering, s.event) for s in
                                                                batch.local_events()], servers)
                    await self.store.queue_pdus(rows, position)
                except Exception:
                    logger.exception("room %s: queueing events for federation failed", batch.room_id)
                    continue
                for destination in {row.destination for row in rows}:
                    self.wake(destination)
        finally:
            self._queueing = False

    async def _rows_for(self, room_id: str, events: Sequence[tuple[int, Any]],
                        in_room: set[str] | None = None) -> list[QueuedPdu]:
        if in_room is None:
            in_room = await servers_in_room(self.hs, room_id)
        rows: list[QueuedPdu] = []
        in_room = await allowed_by_acl(self.hs, room_id, set(in_room))
        for ordering, event in events:
            targets = set(in_room)
            extra = membership_target_server(event, self.server_name)
            if extra is not None:
                targets |= await allowed_by_acl(self.hs, room_id, {extra})
            rows.extend(QueuedPdu(d, ordering, event.event_id) for d in sorted(targets) if self._may_send_to(d))
        return rows

    async def queue_events_upto(self, upto: int) -> None:
        """Queue local events up to the events-stream position ``upto`` (which every process
        has been told, so all below it are committed): a sender worker's source of PDUs."""
        if self._caught_up and not self._stopped:
            await self._queue_missed_events(upto)

    async def _queue_missed_events(self, upto: int | None = None) -> None:
        """Queue local events a crash left unqueued (after the last fully queued position)."""
        # Only this process moves the position, so after the first read memory knows it.
        position = self._queued_upto if self._queued_upto is not None else await self.store.get_position()
        if position is None:  # first start with a sender: history is not ours to push
            self._queued_upto = await self.events.get_max_stream_position()
            await self.store.queue_pdus([], self._queued_upto)
            return
        while upto is None or position < upto:
            found = await self.store.local_events_after(position, self.server_name, RESCAN_BATCH)
            complete = len(found) < RESCAN_BATCH
            if upto is not None:
                found = [row for row in found if row[0] <= upto]
                if complete or not found:
                    found.append((upto, "", "", ""))  # a marker: everything up to upto is read
            if not found:
                return
            ours = [row for row in found if _server_of(row[3]) == self.server_name]
            stored = await self.events.get_events([row[1] for row in ours])
            rows: list[QueuedPdu] = []
            for room_id in dict.fromkeys(row[2] for row in ours):
                rows += await self._rows_for(room_id, [(row[0], stored[row[1]].event) for row in ours
                                                       if row[2] == room_id and row[1] in stored])
            position = found[-1][0]
            await self.store.queue_pdus(rows, position)
            self._queued_upto = position
            if upto is not None:
                for destination in {row.destination for row in rows}:
                    self.wake(destination)
            if upto is None:
                logger.info("queued %d events for federation that were not queued before a restart", len(rows))

    # -- sending ----------------------------------------------------------------------------

    async def _run(self, queue: _Destination) -> None:
        queue.sending = True
        try:
            if not queue.loaded:
                queue.retry = await self.store.get_retry(queue.name)
                queue.loaded = True
            wait_ms = remaining_ms(queue.retry, _now_ms())
            if wait_ms > 0:
                self._retry_later(queue, wait_ms)
                return
            while not self._stopped:
                queue.again = False
                if not await self._send_one(queue) and not queue.again:
                    return
        except _BackingOff:
            return
        except Exception:
            logger.exception("sending to %s failed", queue.name)
            await self._failed(queue)
        finally:
            queue.sending = False

    async def _send_one(self, queue: _Destination) -> bool:
        """Send the next transaction; False when nothing is queued. Raises _BackingOff."""
        txn = await self._next_transaction(queue)
        if txn is None:
            return False
        self._txn_counter += 1
        txn_id = f"{self._txn_prefix}.{self._txn_counter}"
        body = {"origin": self.server_name, "origin_server_ts": _now_ms(), "pdus": txn.pdu_json,
                "edus": txn.edu_json}
        try:
            answer = await self.client.put_json(
                queue.name, federation_path("/_matrix/federation/v1/send/{}", txn_id), body,
                timeout_s=SEND_TIMEOUT_S)
        except FederationRequestError as exc:
            if not isinstance(exc, FederationDeniedError) and exc.code in PERMANENT_CODES:
                logger.warning("%s refused transaction %s (%s): dropping it", queue.name, txn_id, exc)
            else:
                logger.info("transaction %s to %s failed: %s", txn_id, queue.name, exc)
                _restore(queue, txn.ephemeral)
                await self._failed(queue)
                raise _BackingOff() from None
        else:
            _log_pdu_errors(queue.name, txn_id, answer)
            FEDERATION_SENT_TRANSACTIONS.inc()
        await self.store.delete_sent(queue.name, txn.pdus, txn.edus, txn.to_device)
        if queue.retry is not None:
            queue.retry = None
            await self.store.mark_success(queue.name, _now_ms())
        return True

    async def _next_transaction(self, queue: _Destination) -> _Transaction | None:
        pdu_rows = await self.store.pending_pdus(queue.name, MAX_PDUS)
        ephemeral = dict(list(queue.ephemeral.items())[:MAX_EDUS])
        for key in ephemeral:
            del queue.ephemeral[key]
        room = MAX_EDUS - len(ephemeral)
        to_device = await self.store.pending_to_device(queue.name, max(room // 2, 1)) if room else []
        edus = await self.store.pending_edus(queue.name, room - len(to_device)) if room > len(to_device) else []
        if not (pdu_rows or ephemeral or to_device or edus):
            return None
        found = await self.events.get_events([event_id for _, event_id in pdu_rows])
        pdu_json = [_wire_pdu(found[event_id].event.pdu) for _, event_id in pdu_rows if event_id in found]
        edu_json = [{"edu_type": t, "content": c} for t, c in ephemeral.values()]
        edu_json += [{"edu_type": "m.direct_to_device", "content": c} for _, c in to_device]
        edu_json += [{"edu_type": t, "content": c} for _, t, c in edus]
        return _Transaction([o for o, _ in pdu_rows], pdu_json, [i for i, _, _ in edus],
                            [i for i, _ in to_device], ephemeral, edu_json)

    async def _failed(self, queue: _Destination) -> None:
        queue.retry = after_failure(queue.retry, _now_ms(), self.config)
        try:
            await self.store.set_retry(queue.name, queue.retry)
        except Exception:
            logger.exception("recording the backoff of %s failed", queue.name)
        self._retry_later(queue, queue.retry.retry_interval)

    def _retry_later(self, queue: _Destination, wait_ms: int) -> None:
        if self._stopped:
            return
        if queue.timer is not None and queue.timer.active():
            queue.timer.cancel()
        logger.info("retrying %s in %.1fs", queue.name, wait_ms / 1000)
        queue.timer = self.reactor.callLater(wait_ms / 1000.0, self._retry_now, queue)

    def _retry_now(self, queue: _Destination) -> None:
        queue.timer = None
        self.wake(queue.name)


class _BackingOff(Exception):
    """The destination failed; its timer will wake it."""


def _restore(queue: _Destination, ephemeral: dict[str, tuple[str, dict[str, Any]]]) -> None:
    """Put back typing EDUs a failed transaction carried, unless newer ones replaced them."""
    for key, value in ephemeral.items():
        queue.ephemeral.setdefault(key, value)


def _wire_pdu(pdu: dict[str, Any]) -> dict[str, Any]:
    """The PDU as sent: what we hold, minus our local-only ``unsigned`` data."""
    wire = dict(pdu)
    unsigned = wire.pop("unsigned", None)
    if isinstance(unsigned, dict):
        kept = {k: v for k, v in unsigned.items() if k in ("invite_room_state", "knock_room_state")}
        if kept:
            wire["unsigned"] = kept
    return wire


def _log_pdu_errors(destination: str, txn_id: str, answer: Any) -> None:
    results = answer.get("pdus") if isinstance(answer, dict) else None
    if not isinstance(results, dict):
        return
    for event_id, result in results.items():
        if isinstance(result, dict) and result.get("error"):
            logger.info("%s: transaction %s: %s was not accepted: %s", destination, txn_id, event_id,
                        result["error"])


def _server_of(user_id: str) -> str | None:
    try:
        return server_name_of(user_id)
    except ValueError:
        return None


def _now_ms() -> int:
    return int(time.time() * 1000)
