"""The per-room serialised queue that builds, authorises and persists local events.

Every local event goes through `RoomEventQueue.submit`. One worker per room takes
everything queued for that room, builds each event on top of the previous one (so the
DAG of a room that only has local events stays linear and never needs state
resolution), checks it against the auth rules exactly as a federated event would be,
and writes the whole batch in one transaction. Callers get their events back only
after the commit, and the notifier hears of them only once the "events" stream's
current token covers them.

A `submit` call's events are all-or-nothing (room creation relies on it); separate
calls batched together fail independently.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import attrs
from twisted.internet.defer import Deferred

from homeserver.errors import MatrixError, bad_json, forbidden, too_large
from homeserver.events.auth import (
    AuthError,
    auth_types_for_event,
    check_auth_rules,
    listed_auth_types_for_event,
)
from homeserver.events.builder import ServerSigningKey, build_event
from homeserver.events.canonical_json import encode_canonical_json
from homeserver.events.event import Event
from homeserver.events.pdu_format import MAX_PDU_BYTES, PDUFormatError, check_pdu_format
from homeserver.events.power_levels import get_named_level, get_user_power_level
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from homeserver.notifier import Notifier
from storage.stores.events import EventStore, StoredEvent
from storage.stores.events_persist import (
    AliasTakenError,
    NewStateGroup,
    PersistBatch,
    PersistItem,
    persist_batch_txn,
)
from storage.stores.relations import RelationRow
from storage.stores.room_members import MemberRow, RoomMemberStore
from storage.stores.rooms import RoomHeadRow, RoomRow, RoomStore
from storage.stores.state import SNAPSHOT_INTERVAL, StateGroupStore, StateKey

logger = logging.getLogger(__name__)

#: Most events written in one transaction.
MAX_BATCH = 100
#: Rooms whose head (state map, memberships) stays in memory; others reload on use.
MAX_CACHED_HEADS = 1000


@attrs.define
class EventSpec:
    """What a caller wants sent; the queue fills in prev/auth events, depth and signature."""

    event_type: str
    sender: str
    content: dict[str, Any]
    state_key: str | None = None
    redacts: str | None = None
    txn_scope: str | None = None
    txn_id: str | None = None
    #: Only for m.room.create, which must be built before the room ID is known (v12).
    prebuilt: Event | None = None


@attrs.define
class NewRoom:
    """Extra rows to write with a room's first batch."""

    room: RoomRow
    alias: str | None = None


@attrs.define
class RoomHead:
    """The room as the queue sees it: latest event, its state and memberships."""

    room_version: RoomVersion
    event_id: str | None
    depth: int
    state_group: int | None
    chain_length: int
    state: dict[StateKey, str]
    memberships: dict[str, str]

    def copy(self) -> RoomHead:
        return attrs.evolve(self, state=dict(self.state), memberships=dict(self.memberships))

    @property
    def joined_count(self) -> int:
        return sum(1 for m in self.memberships.values() if m == "join")


@attrs.define
class _Submission:
    specs: list[EventSpec]
    deferred: Deferred[list[StoredEvent]]
    new_room: NewRoom | None


@attrs.define
class _Built:
    submission: _Submission
    events: list[tuple[Event, str | None, NewStateGroup | None, int]]  # event, replaces, group, state_group
    head_after: RoomHead


class RoomEventQueue:
    def __init__(self, hs: Any) -> None:
        self.hs = hs
        self.server_name: str = hs.server_name
        self.key: ServerSigningKey = hs.signing_key
        self.max_group_size: int = hs.config.max_group_size
        self.events = hs.get(EventStore)
        self.rooms = hs.get(RoomStore)
        self.members = hs.get(RoomMemberStore)
        self.state_groups = hs.get(StateGroupStore)
        self._pending: dict[str, list[_Submission]] = {}
        self._heads: OrderedDict[str, RoomHead] = OrderedDict()
        self._notify_pending: dict[int, tuple[set[str], set[str]]] = {}
        self._listening = False

    async def submit(self, room_id: str, specs: Sequence[EventSpec],
                     new_room: NewRoom | None = None) -> list[StoredEvent]:
        """Build, authorise and persist specs in order; all or none. Raises MatrixError."""
        deferred: Deferred[list[StoredEvent]] = Deferred()
        queue = self._pending.get(room_id)
        submission = _Submission(list(specs), deferred, new_room)
        if queue is None:
            self._pending[room_id] = [submission]
            Deferred.fromCoroutine(self._run(room_id))
        else:
            queue.append(submission)
        return await deferred

    async def _run(self, room_id: str) -> None:
        try:
            while True:
                queue = self._pending.get(room_id, [])
                if not queue:
                    return
                batch, rest = queue[:MAX_BATCH], queue[MAX_BATCH:]
                self._pending[room_id] = rest
                try:
                    await self._process(room_id, batch)
                except Exception as exc:  # keep the worker alive; fail what it held
                    logger.exception("room %s: persisting a batch failed", room_id)
                    self._heads.pop(room_id, None)
                    _fail(batch, exc)
        finally:
            # Normally empty; never leave submissions behind with no worker to run them.
            _fail(self._pending.pop(room_id, []), RuntimeError("room queue worker stopped"))

    async def _load_head(self, room_id: str) -> RoomHead | None:
        head = self._heads.get(room_id)
        if head is not None:
            self._heads.move_to_end(room_id)
            return head
        version_id = await self.rooms.get_room_version_id(room_id)
        row = await self.rooms.get_head(room_id)
        if version_id is None or row is None:
            return None
        head = RoomHead(
            room_version=KNOWN_ROOM_VERSIONS[version_id],
            event_id=row.event_id,
            depth=row.depth,
            state_group=row.state_group,
            chain_length=await self.state_groups.get_chain_length(row.state_group),
            state=await self.state_groups.get_state_ids(row.state_group),
            memberships=await self.members.get_memberships_in_room(room_id),
        )
        self._cache_head(room_id, head)
        return head

    async def _process(self, room_id: str, batch: list[_Submission]) -> None:
        head = await self._load_head(room_id)
        built: list[_Built] = []
        in_batch: dict[str, Event] = {}
        for submission in batch:
            try:
                working = head.copy() if head is not None else None
                events = []
                for spec in submission.specs:
                    working, item = await self._build_one(room_id, working, spec, in_batch)
                    events.append(item)
                    in_batch[item[0].event_id] = item[0]
            except Exception as exc:
                submission.deferred.errback(_client_error(exc))
                continue
            assert working is not None
            head = working
            built.append(_Built(submission, events, working))
        if not built:
            return
        await self._persist(room_id, built)

    async def _build_one(
        self, room_id: str, head: RoomHead | None, spec: EventSpec, in_batch: dict[str, Event]
    ) -> tuple[RoomHead, tuple[Event, str | None, NewStateGroup | None, int]]:
        if spec.prebuilt is not None:
            event = spec.prebuilt
            _check_shape(event)
            check_auth_rules(event, {})
            head = RoomHead(event.room_version, None, 0, None, 0, {}, {})
        else:
            if head is None:
                raise forbidden("Unknown room")
            event = await self._build_event(room_id, head, spec, in_batch)
        key = (event.type, event.state_key) if event.state_key is not None else None
        replaces = head.state.get(key) if key is not None else None
        new_group: NewStateGroup | None = None
        if key is not None:
            head.state[key] = event.event_id
            (group_id,) = await self.state_groups.allocate_ids(1)
            if head.state_group is None or head.chain_length >= SNAPSHOT_INTERVAL:
                new_group = NewStateGroup(group_id, None, 0, dict(head.state))
            else:
                new_group = NewStateGroup(group_id, head.state_group, head.chain_length + 1,
                                          {key: event.event_id})
            head.state_group = group_id
            head.chain_length = new_group.chain_length
        if event.type == "m.room.member" and event.state_key is not None:
            membership = event.membership or "leave"
            if membership == "join" and head.memberships.get(event.state_key) != "join":
                if head.joined_count >= self.max_group_size:
                    raise MatrixError(
                        403, "M_FORBIDDEN",
                        f"This room is full: it already has {self.max_group_size} joined members,"
                        " the most this server allows",
                    )
            head.memberships[event.state_key] = membership
        head.event_id = event.event_id
        head.depth = event.depth
        assert head.state_group is not None
        return head, (event, replaces, new_group, head.state_group)

    async def _build_event(self, room_id: str, head: RoomHead, spec: EventSpec,
                           in_batch: dict[str, Event]) -> Event:
        room_version = head.room_version
        provisional = Event(
            pdu={"type": spec.event_type, "sender": spec.sender, "content": spec.content,
                 "room_id": room_id, **({"state_key": spec.state_key} if spec.state_key is not None else {})},
            event_id="$provisional", room_version=room_version,
        )
        wanted = auth_types_for_event(provisional)
        auth_ids = {k: head.state[k] for k in wanted if k in head.state}
        auth_events = await self._get_events(auth_ids.values(), in_batch)
        auth_map = {k: auth_events[i] for k, i in auth_ids.items() if i in auth_events}
        listed = listed_auth_types_for_event(provisional)
        listed_ids = [auth_ids[k] for k in sorted(listed) if k in auth_ids]
        assert head.event_id is not None
        prev_ids = [head.event_id]
        reference_hashes = None
        if room_version.event_id_carried_in_pdu:
            refs = await self._get_events([*prev_ids, *listed_ids], in_batch)
            reference_hashes = {i: e.pdu.get("hashes", {}) for i, e in refs.items()}
        try:
            event = build_event(
                room_version=room_version, event_type=spec.event_type, sender=spec.sender,
                content=spec.content, room_id=room_id, prev_event_ids=prev_ids,
                auth_event_ids=listed_ids, depth=head.depth + 1,
                origin_server_ts=int(time.time() * 1000), key=self.key, state_key=spec.state_key,
                redacts=spec.redacts, reference_hashes=reference_hashes,
            )
        except (TypeError, ValueError) as exc:
            raise bad_json(f"Cannot build event: {exc}") from None
        _check_shape(event)
        check_auth_rules(event, auth_map)
        if event.type == "m.room.redaction":
            await self._check_redaction(event, auth_map, in_batch)
        return event

    async def _check_redaction(self, event: Event, auth_map: dict[StateKey, Event],
                               in_batch: dict[str, Event]) -> None:
        """Redacting someone else's event needs the redact level (the auth rules leave it to us)."""
        target_id = event.redacts
        if target_id is None:
            raise bad_json("m.room.redaction needs the event to redact")
        targets = await self._get_events([target_id], in_batch)
        target = targets.get(target_id)
        if target is None or target.room_id != event.room_id:
            raise MatrixError(404, "M_NOT_FOUND", "Event to redact not found in this room")
        if target.sender == event.sender:
            return
        if get_user_power_level(event.sender, auth_map) < get_named_level("redact", auth_map):
            raise forbidden("You need the redact power level to redact other users' events")

    async def _get_events(self, event_ids: Any, in_batch: dict[str, Event]) -> dict[str, Event]:
        ids = list(event_ids)
        found = {i: in_batch[i] for i in ids if i in in_batch}
        missing = [i for i in ids if i not in found]
        if missing:
            stored = await self.events.get_events(missing)
            found.update({i: s.event for i, s in stored.items()})
        return found

    async def _persist(self, room_id: str, built: list[_Built]) -> None:
        total = sum(len(b.events) for b in built)
        gen = await self.events.stream_generator()
        now = int(time.time() * 1000)
        batch = PersistBatch(room_id)
        stored_by_submission: list[list[StoredEvent]] = []
        async with gen.get_next_mult(total) as stream_ids:
            ids = iter(stream_ids)
            for entry in built:
                spec_events = []
                if entry.submission.new_room is not None:
                    batch.new_room = entry.submission.new_room.room
                    if entry.submission.new_room.alias is not None:
                        batch.new_alias = (entry.submission.new_room.alias,
                                           entry.submission.new_room.room.creator)
                for spec, (event, replaces, group, state_group) in zip(
                    entry.submission.specs, entry.events, strict=True
                ):
                    stored = StoredEvent(
                        event, next(ids), state_group, replaces, spec.txn_scope, spec.txn_id, None,
                        isinstance(event.content.get("url"), str),
                    )
                    spec_events.append(stored)
                    batch.items.append(PersistItem(stored, group, now))
                    self._collect_side_rows(batch, stored)
                stored_by_submission.append(spec_events)
            last = built[-1].head_after
            assert last.event_id is not None and last.state_group is not None
            batch.head = RoomHeadRow(last.event_id, last.depth, last.state_group)
            try:
                redacted = await self.hs.db.run_interaction("persist_events", persist_batch_txn, batch)
            except AliasTakenError:
                self._heads.pop(room_id, None)
                raise MatrixError(400, "M_ROOM_IN_USE", "Room alias already taken") from None
        self._cache_head(room_id, last)
        for item in batch.items:
            self.events.prime_cache(item.stored)
        self.state_groups.remember(last.state_group, last.state)
        for target_id in redacted:
            self.events.invalidate(target_id)
        users = {row.user_id for row in batch.members}
        self._queue_notification(stream_ids[-1], users, {room_id}, gen)
        for entry, stored_events in zip(built, stored_by_submission, strict=True):
            entry.submission.deferred.callback(stored_events)

    def _collect_side_rows(self, batch: PersistBatch, stored: StoredEvent) -> None:
        event = stored.event
        if event.state_key is not None:
            batch.current_state[(event.type, event.state_key)] = event.event_id
        if event.type == "m.room.member" and event.state_key is not None:
            batch.members.append(MemberRow(batch.room_id, event.state_key, event.sender,
                                           event.membership or "leave", event.event_id,
                                           stored.stream_ordering))
        if event.type == "m.room.redaction" and event.redacts is not None:
            batch.redactions.append((event.redacts, event.event_id))
        relates_to = event.content.get("m.relates_to")
        if isinstance(relates_to, dict) and event.type != "m.room.redaction":
            rel_type, target = relates_to.get("rel_type"), relates_to.get("event_id")
            if isinstance(rel_type, str) and isinstance(target, str):
                key = relates_to.get("key")
                batch.relations.append(RelationRow(
                    event.event_id, target, rel_type, key if isinstance(key, str) else None,
                    batch.room_id, event.type, event.sender, stored.stream_ordering,
                ))

    def _queue_notification(self, position: int, users: set[str], rooms: set[str], gen: Any) -> None:
        """Tell the notifier once the stream's current token covers `position`, never before."""
        if not self._listening:
            gen.add_advance_listener(self._flush_notifications)
            self._listening = True
        self._notify_pending[position] = (users, rooms)
        self._flush_notifications(gen.get_current_token())

    def _flush_notifications(self, token: int) -> None:
        ready = sorted(p for p in self._notify_pending if p <= token)
        notifier = self.hs.get(Notifier)
        for position in ready:
            users, rooms = self._notify_pending.pop(position)
            notifier.on_new_event("events", token, users=users, rooms=rooms)

    def _cache_head(self, room_id: str, head: RoomHead) -> None:
        self._heads[room_id] = head
        self._heads.move_to_end(room_id)
        while len(self._heads) > MAX_CACHED_HEADS:
            self._heads.popitem(last=False)

    def forget_head(self, room_id: str) -> None:
        self._heads.pop(room_id, None)


def _fail(submissions: list[_Submission], exc: Exception) -> None:
    for submission in submissions:
        if not submission.deferred.called:
            submission.deferred.errback(exc)


def _check_shape(event: Event) -> None:
    """Size (413) and structure (400) limits, before the auth rules."""
    if "\x00" in event.type or "\x00" in (event.state_key or ""):
        raise bad_json("Event type and state key may not contain NUL characters")
    try:
        size = len(encode_canonical_json(event.pdu))
    except (TypeError, ValueError) as exc:
        raise bad_json(f"Invalid event JSON: {exc}") from None
    if size > MAX_PDU_BYTES:
        raise too_large(f"Event is {size} bytes; the limit is {MAX_PDU_BYTES}")
    try:
        check_pdu_format(event.pdu, event.room_version)
    except PDUFormatError as exc:
        raise bad_json(f"Invalid event: {exc}") from None


def _client_error(exc: Exception) -> Exception:
    if isinstance(exc, AuthError):
        return forbidden(str(exc))
    return exc
