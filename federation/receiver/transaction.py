"""``PUT /_matrix/federation/v1/send/{txnId}``: a transaction of PDUs and EDUs from another server.

- Deduplicated by (origin, txn_id), persisted: a retry, even after a restart, gets the first
  answer and writes nothing again; a retry while the first is being worked on waits for it.
- The raw PDUs are stored with the transaction before any work on them; a transaction found
  unanswered at start-up (we crashed mid-way) is worked on again from them.
- Each origin's transactions are worked on one at a time, in arrival order, with at most
  ``MAX_QUEUED_PER_ORIGIN`` waiting (429 beyond); ``rc_federation`` is applied by the HTTP layer.
- PDUs: the format, signature and hash checks (pdu_checks.py), then, per room in the order
  given, the event pipeline with gap filling (gaps.py), which runs the auth checks. Rooms are
  worked on concurrently. Each PDU gets a result: ``{}`` or ``{"error": ...}``.
- EDUs after the PDUs, through the EduRegistry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import Deferred, DeferredLock, gatherResults

from federation.receiver.edus import EduRegistry
from federation.receiver.gaps import GapFiller
from federation.receiver.out_of_band import OutOfBandReceiver
from federation.receiver.pdu_checks import CheckedPdu, FailedPdu, PduChecker, event_id_of
from federation.server_visibility import domain_of
from federation.transport.auth import FederationAuth
from homeserver.errors import MatrixError, bad_json, limit_exceeded
from homeserver.events.event import Event
from homeserver.handlers.rooms.room_state import RoomStateHandler
from homeserver.pipeline import EventResult, Outcome
from homeserver.server import Server
from storage.stores.federation_inbound import FederationInboundStore
from storage.stores.room_members import RoomMemberStore

logger = logging.getLogger(__name__)

MAX_PDUS = 50
MAX_EDUS = 100
#: Transactions of one origin allowed to wait behind the one being worked on.
MAX_QUEUED_PER_ORIGIN = 10
#: Answers to old transactions are forgotten after this long (checked at start-up and every
#: ``PURGE_EVERY`` transactions).
TXN_RETENTION_MS = 7 * 24 * 3600 * 1000
PURGE_EVERY = 1000
_OK_OUTCOMES = (Outcome.ACCEPTED, Outcome.SOFT_FAILED, Outcome.DUPLICATE, Outcome.OUTLIER)


def validate_transaction(body: Any) -> tuple[list[Any], list[Any]]:
    """The PDUs and EDUs of a transaction body; 400 for a malformed one."""
    if not isinstance(body, dict):
        raise bad_json("The transaction must be a JSON object")
    pdus = body.get("pdus", [])
    edus = body.get("edus", [])
    if not isinstance(pdus, list) or not isinstance(edus, list):
        raise bad_json("pdus and edus must be lists")
    if len(pdus) > MAX_PDUS or len(edus) > MAX_EDUS:
        raise bad_json(f"A transaction holds at most {MAX_PDUS} PDUs and {MAX_EDUS} EDUs")
    for key, kind in (("origin", str), ("origin_server_ts", int)):
        if key in body and (not isinstance(body[key], kind) or isinstance(body[key], bool)):
            raise bad_json(f"{key} has the wrong type")
    return pdus, edus


class _Origin:
    def __init__(self) -> None:
        self.lock = DeferredLock()
        self.waiting = 0


class TransactionReceiver:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.server_name: str = hs.server_name
        self.store = hs.get(FederationInboundStore)
        self.checker = hs.get(PduChecker)
        self.gaps = hs.get(GapFiller)
        self.out_of_band = hs.get(OutOfBandReceiver)
        self.edus = hs.get(EduRegistry)
        self.room_state = hs.get(RoomStateHandler)
        self.members = hs.get(RoomMemberStore)
        self.acl = hs.get(FederationAuth)
        self._origins: dict[str, _Origin] = {}
        self._inflight: dict[tuple[str, str], list[Deferred[dict[str, Any]]]] = {}
        self._finished = 0

    async def on_transaction(self, origin: str, txn_id: str, body: Any) -> dict[str, Any]:
        pdus, edus = validate_transaction(body)
        key = (origin, txn_id)
        if key in self._inflight:  # the same transaction, still being worked on
            waiter: Deferred[dict[str, Any]] = Deferred()
            self._inflight[key].append(waiter)
            return await waiter
        queue = self._origins.setdefault(origin, _Origin())
        if queue.waiting >= MAX_QUEUED_PER_ORIGIN:
            raise limit_exceeded(1000)
        self._inflight[key] = []
        queue.waiting += 1
        try:
            await queue.lock.acquire()
            queue.waiting -= 1
            try:
                response = await self._once(origin, txn_id, pdus, edus)
            finally:
                queue.lock.release()
        except BaseException as exc:
            for waiter in self._inflight.pop(key, []):
                waiter.errback(exc)
            raise
        finally:
            if not queue.lock.locked and queue.waiting == 0:
                self._origins.pop(origin, None)
        for waiter in self._inflight.pop(key, []):
            waiter.callback(response)
        return response

    async def _once(self, origin: str, txn_id: str, pdus: list[Any], edus: list[Any]) -> dict[str, Any]:
        known, response = await self.store.get_response(origin, txn_id)
        if response is not None:
            return response
        if known:  # staged before a crash: work on what was stored, not on the retry's body
            staged = {(o, t): p for o, t, p in await self.store.unfinished()}
            pdus = staged.get((origin, txn_id), pdus)
        elif not await self.store.stage(origin, txn_id, pdus, int(time.time() * 1000)):
            return await self._once(origin, txn_id, pdus, edus)  # a racing duplicate finished it
        response = {"pdus": await self.process_pdus(origin, pdus)}
        for edu in edus:
            await self.edus.handle(origin, edu)
        await self.store.finish(origin, txn_id, response)
        self._finished += 1
        if self._finished % PURGE_EVERY == 0:
            await self.store.purge_older_than(int(time.time() * 1000) - TXN_RETENTION_MS)
        return response

    async def recover(self) -> None:
        """Work on the transactions a crash left unanswered (at start-up)."""
        try:
            unfinished = await self.store.unfinished()
            await self.store.purge_older_than(int(time.time() * 1000) - TXN_RETENTION_MS)
        except Exception:
            logger.exception("inbound federation: could not read unfinished transactions")
            return
        for origin, txn_id, pdus in unfinished:
            logger.info("working again on transaction %s from %s (%d PDUs)", txn_id, origin, len(pdus))
            try:
                await self.on_transaction(origin, txn_id, {"pdus": pdus})
            except Exception:
                logger.exception("transaction %s from %s failed again", txn_id, origin)

    # -- PDUs ------------------------------------------------------------------------

    async def process_pdus(self, origin: str, pdus: Sequence[Any]) -> dict[str, dict[str, Any]]:
        results: dict[str, dict[str, Any]] = {}
        by_room: dict[str, list[Any]] = {}
        for raw in pdus:
            room_id = raw.get("room_id") if isinstance(raw, dict) else None
            if isinstance(room_id, str):
                by_room.setdefault(room_id, []).append(raw)
            else:
                logger.info("dropping a PDU from %s without a room_id", origin)
        answers = await gatherResults([Deferred.fromCoroutine(self._room(origin, room_id, raws))
                                       for room_id, raws in by_room.items()])
        for answer in answers:
            results.update(answer)
        return results

    async def _room(self, origin: str, room_id: str, raws: list[Any]) -> dict[str, dict[str, Any]]:
        try:
            return await self._room_unguarded(origin, room_id, raws)
        except Exception:
            logger.exception("room %s: PDUs from %s failed", room_id, origin)
            return {}

    async def _room_unguarded(self, origin: str, room_id: str, raws: list[Any]) -> dict[str, dict[str, Any]]:
        room_version = await self.room_state.get_room_version(room_id)
        if room_version is None:
            logger.info("dropping %d PDUs from %s for unknown room %s", len(raws), origin, room_id)
            return {}
        results: dict[str, dict[str, Any]] = {}
        if not await self._we_are_in(room_id):
            # Only a rescinded invite or a refused knock of one of ours can concern us here.
            return await self.out_of_band.receive(origin, room_id, room_version, raws)
        try:
            await self.acl.check_server_acl(origin, room_id)
        except MatrixError as exc:
            denied = {"error": exc.message}
            return {i: denied for i in (event_id_of(raw, room_version) for raw in raws) if i is not None}
        events: list[Event] = []
        for checked in await self.checker.check(raws, room_version, room_id):
            if isinstance(checked, FailedPdu):
                if checked.event_id is not None:
                    results[checked.event_id] = {"error": checked.reason}
            elif isinstance(checked, CheckedPdu):
                events.append(checked.event)
        if events:
            outcomes = await self.gaps.submit(origin, room_id, room_version, events)
            for event in events:
                results[event.event_id] = _answer(outcomes.get(event.event_id))
        return results

    async def _we_are_in(self, room_id: str) -> bool:
        users = await self.members.get_users_in_room(room_id)
        return any(domain_of(user) == self.server_name for user in users)


def _answer(result: EventResult | None) -> dict[str, Any]:
    if result is None:
        return {"error": "not processed"}
    if result.outcome in _OK_OUTCOMES:
        return {}
    return {"error": f"{result.outcome.value}: {result.reason or ''}".rstrip(": ")}

