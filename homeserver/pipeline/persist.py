"""Stage 4 to 6: turn a batch's decisions into rows, commit them in one transaction,
then bring the in-memory head and caches along and announce the write.

Everything the pipeline decided lives in `RoomWork`; `rows_for` derives the rows
(edges, rejections, the current-state delta, memberships, extremities, relations,
redactions) and storage/stores/events_persist.py writes them.
"""

from __future__ import annotations

from homeserver.errors import MatrixError
from homeserver.events.self_destruct import self_destruct_of, thread_of
from homeserver.pipeline.head import RoomHeads
from homeserver.pipeline.types import Outcome, PersistedBatch, PersistedEvent
from homeserver.pipeline.work import Prepared, RoomWork
from homeserver.server import Server
from storage.room_stream_cache import RoomStreamCache
from storage.stores.event_search import search_row_for
from storage.stores.events import EventStore, StoredEvent
from storage.stores.events_persist import (
    AliasTakenError,
    PendingRedaction,
    PersistBatch,
    PersistItem,
    persist_batch_txn,
)
from storage.stores.relations import RelationRow, RelationsStore
from storage.stores.room_members import MemberRow, RoomMemberStore
from storage.stores.self_destruct import SelfDestructRow
from storage.stores.state import StateGroupStore


class BatchWriter:
    def __init__(self, hs: Server, heads: RoomHeads) -> None:
        self.hs = hs
        self.clock = hs.clock
        self.heads = heads
        self.events = hs.get(EventStore)
        self.groups = hs.get(StateGroupStore)
        self.members = hs.get(RoomMemberStore)
        self.relations = hs.get(RelationsStore)
        self.recent = hs.get(RoomStreamCache)

    async def write(self, work: RoomWork) -> PersistedBatch:
        room_id = work.room_id
        now = int(self.clock.seconds() * 1000)
        in_dag = sum(1 for item in work.items if item.streamed)
        outliers = iter(await self.events.allocate_outlier_orderings(len(work.items) - in_dag))
        writer = await self.events.stream_writer()
        self.recent.start(writer.get_current_token())
        async with writer.allocate(max(in_dag, 1)) as stream_ids:
            positions = iter(stream_ids)
            stored = [_stored(item, next(positions) if item.streamed else next(outliers)) for item in work.items]
            batch = await self._rows(work, stored, now)
            try:
                redacted = await self.hs.db.run_interaction("persist_events", persist_batch_txn, batch)
            except AliasTakenError:
                self.heads.forget(room_id)
                raise MatrixError(400, "M_ROOM_IN_USE", "Room alias already taken") from None
            # Before the ids finish: no reader may see a token covering what these caches miss.
            self._update_caches(room_id, stored, batch, redacted)
        if work.head is not None:
            self.heads.remember(room_id, work.head)
            if work.head.current is not None:
                self.groups.remember(work.head.current.group, work.head.current.state)
        users = {row.user_id for row in batch.current_members} | set(batch.removed_members)
        users |= {row.user_id for row in batch.membership_changes}
        if in_dag:
            writer.announce(stream_ids[-1], users=users, rooms={room_id})
        extremities = frozenset(work.head.extremities) if work.head is not None else frozenset()
        return PersistedBatch(
            room_id,
            tuple(PersistedEvent(s, item.outcome, item.origin) for s, item in zip(stored, work.items, strict=True)),
            extremities,
        )

    def _update_caches(self, room_id: str, stored: list[StoredEvent], batch: PersistBatch,
                       redacted: list[str]) -> None:
        """The in-memory views sync reads instead of the database (storage/room_stream_cache.py)."""
        for event in stored:
            self.events.prime_cache(event)
        for target_id in redacted:
            self.events.invalidate(target_id)
        members = {row.user_id for row in batch.current_members} | set(batch.removed_members)
        members |= {row.user_id for row in batch.membership_changes}
        if members:
            self.members.invalidate(room_id, members)
        self.relations.invalidate(row.relates_to_id for row in batch.relations)
        self.recent.record(
            room_id, [(e.stream_ordering, e.event_id) for e in stored if e.stream_ordering > 0 and e.in_timeline],
            [(row.user_id, row.stream_ordering) for row in batch.membership_changes],
            batch.stream_state)

    async def _rows(self, work: RoomWork, stored: list[StoredEvent], now: int) -> PersistBatch:
        room_id = work.room_id
        batch = PersistBatch(room_id, now, groups=list(work.new_groups), new_room=work.new_room.room
                             if work.new_room is not None else None)
        if work.new_room is not None and work.new_room.alias is not None:
            batch.new_alias = (work.new_room.alias, work.new_room.room.creator)
        by_id: dict[str, StoredEvent] = {}
        for item, event in zip(work.items, stored, strict=True):
            by_id[event.event_id] = event
            batch.items.append(PersistItem(event, now, item.deoutlier))
            _event_rows(batch, item, event)
        if work.head is not None:
            await self._current_state_rows(work, batch, by_id)
        return batch

    async def _current_state_rows(self, work: RoomWork, batch: PersistBatch,
                                  by_id: dict[str, StoredEvent]) -> None:
        head = work.head
        assert head is not None
        initial, final = work.initial_state, head.state
        if work.touched is not None:
            changed = {key: final[key] for key in work.touched if key in final and initial.get(key) != final[key]}
            batch.removed_state = [key for key in work.touched if key in initial and key not in final]
        else:
            changed = {key: eid for key, eid in final.items() if initial.get(key) != eid}
            batch.removed_state = [key for key in initial if key not in final]
        batch.current_state = changed
        member_ids = {key[1]: eid for key, eid in changed.items() if key[0] == "m.room.member"}
        missing = [eid for eid in member_ids.values() if eid not in by_id]
        loaded = {**by_id, **(await self.events.get_events(missing) if missing else {})}
        for user_id, event_id in member_ids.items():
            member = loaded.get(event_id)
            if member is None:
                continue
            batch.current_members.append(MemberRow(
                work.room_id, user_id, member.event.sender, member.event.membership or "leave",
                event_id, member.stream_ordering))
        batch.removed_members = [key[1] for key in batch.removed_state if key[0] == "m.room.member"]
        if head.extremities.keys() != work.initial_extremities:
            batch.forward_before = sorted(work.initial_extremities)
            batch.forward_extremities = sorted(head.extremities)
        for item in work.items:
            if item.current_group is not None:
                batch.stream_state.append((by_id[item.event.event_id].stream_ordering, item.current_group))


def _stored(item: Prepared, ordering: int) -> StoredEvent:
    event = item.event
    spec = item.spec
    replaces = None
    if item.before is not None and event.state_key is not None and item.outcome is not Outcome.REJECTED:
        replaces = item.before.state.get((event.type, event.state_key))
    return StoredEvent(
        event, ordering, item.after.group if item.in_dag and item.after is not None else None, replaces,
        spec.txn_scope if spec else None, spec.txn_id if spec else None, None,
        isinstance(event.content.get("url"), str),
        outlier=item.outlier, rejected=item.outcome is Outcome.REJECTED,
        soft_failed=item.outcome is Outcome.SOFT_FAILED,
    )


def _event_rows(batch: PersistBatch, item: Prepared, stored: StoredEvent) -> None:
    """The rows one event brings besides its own: edges, rejection, membership, relations."""
    event = stored.event
    if item.in_dag:
        batch.edges.extend((event.event_id, prev_id) for prev_id in event.prev_event_ids)
    if not item.deoutlier:
        batch.auth_edges.extend((event.event_id, auth_id) for auth_id in event.auth_event_ids)
    if item.origin is not None:
        batch.backward_removed.append(event.event_id)
        if not item.deoutlier:  # a redaction that came first may be waiting for it
            batch.arrived.append((event.event_id, event.sender))
        batch.backward_added.extend(item.missing_prevs)
    if item.outcome is Outcome.REJECTED:
        batch.rejections.append((event.event_id, item.reason or "rejected"))
    _self_destruct_row(batch, item, stored)
    if item.out_of_band and event.state_key is not None:
        row = MemberRow(batch.room_id, event.state_key, event.sender, event.membership or "leave",
                        event.event_id, stored.stream_ordering)
        batch.membership_changes.append(row)
        batch.current_members.append(row)
    if item.outcome is not Outcome.ACCEPTED:
        return
    search = search_row_for(stored) if item.in_dag else None
    if search is not None:
        batch.search.append(search)
    if event.type == "m.room.member" and event.state_key is not None and not item.backfilled:
        batch.membership_changes.append(MemberRow(batch.room_id, event.state_key, event.sender,
                                                  event.membership or "leave", event.event_id,
                                                  stored.stream_ordering))
    # A remote redaction's right to apply depends on its target (same server, or the redact
    # power level): the remote stage decided it (pipeline/remote.py).
    if event.type == "m.room.redaction" and event.redacts is not None \
            and (item.origin is None or item.applies_redaction):
        batch.redactions.append((event.redacts, event.event_id))
    if item.pending_redaction is not None and event.redacts is not None:
        batch.pending_redactions.append(PendingRedaction(event.redacts, event.event_id, event.sender,
                                                         item.pending_redaction))
    relates_to = event.content.get("m.relates_to")
    if isinstance(relates_to, dict) and event.type != "m.room.redaction":
        rel_type, target = relates_to.get("rel_type"), relates_to.get("event_id")
        if isinstance(rel_type, str) and isinstance(target, str):
            key = relates_to.get("key")
            batch.relations.append(RelationRow(
                event.event_id, target, rel_type, key if isinstance(key, str) else None,
                batch.room_id, event.type, event.sender, stored.stream_ordering,
            ))


def _self_destruct_row(batch: PersistBatch, item: Prepared, stored: StoredEvent) -> None:
    """A message event asking to self-destruct gets its row (and timer) with the event,
    whatever its outcome: a rejected or outlier event's content is stored all the same.
    A de-outliered event's row moves to its new stream position."""
    event = stored.event
    if event.is_state():
        return
    destruct = self_destruct_of(event.content)
    if destruct is None:
        return
    batch.self_destructs.append(SelfDestructRow(
        event.event_id, batch.room_id, event.sender, stored.stream_ordering, thread_of(event.content) or "",
        destruct.at_ts, destruct.after_read_ms))
