"""Writing a batch of a room's events in ONE transaction.

The event pipeline (homeserver/pipeline/) decides everything (stream positions, state
groups, extremities, the current state delta, rejections); this module only turns that
decision into rows, so "200 after commit" covers the event, its edges, its state,
membership, relations, transaction ID and any redaction it applies, or none of them.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from homeserver.events.auth import redaction_applies_to
from homeserver.events.canonical_json import encode_canonical_json
from homeserver.events.redaction import redact_pdu
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from storage.engine import Transaction
from storage.stores.aliases import insert_alias_txn
from storage.stores.current_state import StateKey, update_current_state_txn
from storage.stores.event_search import SearchRow, delete_search_txn, insert_search_txn
from storage.stores.events import StoredEvent
from storage.stores.relations import RelationRow, insert_relations_txn
from storage.stores.room_dag import (
    insert_auth_edges_txn,
    insert_edges_txn,
    insert_rejections_txn,
    insert_stream_state_txn,
    update_backward_extremities_txn,
    update_forward_extremities_txn,
)
from storage.stores.room_members import (
    MemberRow,
    insert_membership_changes_txn,
    write_current_members_txn,
)
from storage.stores.rooms import RoomRow, insert_room_txn
from storage.stores.self_destruct import SelfDestructRow, insert_self_destructs_txn
from storage.stores.state import write_group_txn
from storage.stores.txn_ids import insert_txn_id_txn

_INSERT_EVENT = (
    "INSERT INTO events (stream_ordering, event_id, room_id, type, state_key, sender, depth,"
    " origin_server_ts, received_ts, state_group, replaces_state, contains_url, txn_scope, txn_id,"
    " redacted_by, json, outlier, rejected, soft_failed)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?)"
)
# An outlier joins the DAG: it gets a place in the live stream and its state.
_DEOUTLIER = (
    "UPDATE events SET stream_ordering = ?, state_group = ?, replaces_state = ?, outlier = 0,"
    " rejected = ?, soft_failed = ?, received_ts = ? WHERE event_id = ? AND outlier = 1"
)
_TARGET = "SELECT json, room_id, redacted_by FROM events WHERE event_id = ?"
_APPLY_REDACTION = "UPDATE events SET json = ?, redacted_by = ?, contains_url = 0 WHERE event_id = ?"
_INSERT_PENDING = (
    "INSERT INTO pending_redactions (target_event_id, redaction_event_id, room_id, redaction_sender, privileged)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
_PENDING_FOR = ("SELECT target_event_id, redaction_event_id, redaction_sender, privileged FROM pending_redactions"
                " WHERE room_id = ? AND target_event_id IN ({})")
_DELETE_PENDING = "DELETE FROM pending_redactions WHERE target_event_id = ?"
# A redacted event no longer relates to anything (its m.relates_to is gone).
_DROP_RELATION = "DELETE FROM event_relations WHERE event_id = ?"


class AliasTakenError(Exception):
    """The alias asked for at room creation already exists; nothing was written."""


@attrs.frozen(slots=True)
class NewStateGroup:
    group: int
    prev_group: int | None
    chain_length: int
    entries: dict[StateKey, str]


@attrs.frozen(slots=True)
class PendingRedaction:
    """A remote redaction waiting for its target (see pending_redactions, migration 0086)."""

    target_id: str
    redaction_id: str
    sender: str
    privileged: bool


@attrs.frozen(slots=True)
class PersistItem:
    stored: StoredEvent
    received_ts: int
    #: The event was held as an outlier and now joins the DAG (an UPDATE, not an INSERT).
    deoutlier: bool = False


@attrs.define
class PersistBatch:
    room_id: str
    now_ms: int
    items: list[PersistItem] = attrs.field(factory=list)
    groups: list[NewStateGroup] = attrs.field(factory=list)
    new_room: RoomRow | None = None
    new_alias: tuple[str, str] | None = None  # (alias, creator)
    edges: list[tuple[str, str]] = attrs.field(factory=list)
    auth_edges: list[tuple[str, str]] = attrs.field(factory=list)
    rejections: list[tuple[str, str]] = attrs.field(factory=list)  # (event ID, reason)
    current_state: dict[StateKey, str] = attrs.field(factory=dict)
    removed_state: list[StateKey] = attrs.field(factory=list)
    current_members: list[MemberRow] = attrs.field(factory=list)
    removed_members: list[str] = attrs.field(factory=list)
    membership_changes: list[MemberRow] = attrs.field(factory=list)
    #: The room's forward extremities as stored before the batch, and after it (None: unchanged).
    forward_before: list[str] = attrs.field(factory=list)
    forward_extremities: list[str] | None = None
    backward_added: list[str] = attrs.field(factory=list)
    backward_removed: list[str] = attrs.field(factory=list)
    #: (stream_ordering, state_group): where the current state changed.
    stream_state: list[tuple[int, int]] = attrs.field(factory=list)
    relations: list[RelationRow] = attrs.field(factory=list)
    #: (target event ID, redaction event ID) pairs to apply.
    redactions: list[tuple[str, str]] = attrs.field(factory=list)
    #: Remote redactions whose target is not stored yet, and (event ID, sender) of the remote
    #: events this batch stores for the first time (a waiting redaction may be theirs).
    pending_redactions: list[PendingRedaction] = attrs.field(factory=list)
    arrived: list[tuple[str, str]] = attrs.field(factory=list)
    #: Events that asked to self-destruct (their timers are written with them).
    self_destructs: list[SelfDestructRow] = attrs.field(factory=list)
    #: Searchable text of accepted timeline events (before the redactions: one may target them).
    search: list[SearchRow] = attrs.field(factory=list)


def persist_batch_txn(txn: Transaction, batch: PersistBatch) -> list[str]:
    """Write everything; returns the IDs of events whose stored form was redacted."""
    room_id = batch.room_id
    if batch.new_room is not None:
        insert_room_txn(txn, batch.new_room, batch.now_ms)
    if batch.new_alias is not None:
        alias, creator = batch.new_alias
        if not insert_alias_txn(txn, alias, room_id, creator):
            raise AliasTakenError(alias)
    for group in batch.groups:
        write_group_txn(txn, group.group, room_id, group.prev_group, group.chain_length, group.entries)
    txn.executemany(_INSERT_EVENT, [_event_row(room_id, item) for item in batch.items if not item.deoutlier])
    for item in batch.items:
        if item.deoutlier:
            stored = item.stored
            txn.execute(_DEOUTLIER, (stored.stream_ordering, stored.state_group, stored.replaces_state,
                                     int(stored.rejected), int(stored.soft_failed), item.received_ts,
                                     stored.event_id))
        elif item.stored.txn_scope is not None and item.stored.txn_id is not None:
            insert_txn_id_txn(txn, item.stored.txn_scope, item.stored.txn_id, item.stored.event_id,
                              room_id, item.received_ts)
    insert_edges_txn(txn, room_id, batch.edges)
    insert_auth_edges_txn(txn, room_id, batch.auth_edges)
    insert_rejections_txn(txn, room_id, batch.rejections, batch.now_ms)
    update_current_state_txn(txn, room_id, batch.current_state, batch.removed_state)
    write_current_members_txn(txn, room_id, batch.current_members, batch.removed_members)
    insert_membership_changes_txn(txn, batch.membership_changes)
    insert_relations_txn(txn, batch.relations)
    if batch.forward_extremities is not None:
        update_forward_extremities_txn(txn, room_id, batch.forward_before, batch.forward_extremities)
    update_backward_extremities_txn(txn, room_id, batch.backward_added, batch.backward_removed)
    insert_stream_state_txn(txn, room_id, batch.stream_state)
    insert_self_destructs_txn(txn, batch.self_destructs)
    insert_search_txn(txn, batch.search)
    redacted = []
    for target_id, redaction_id in batch.redactions + _arrived_targets_txn(txn, batch):
        if apply_redaction_txn(txn, room_id, target_id, redaction_id):
            redacted.append(target_id)
    return redacted


def _arrived_targets_txn(txn: Transaction, batch: PersistBatch) -> list[tuple[str, str]]:
    """Record the batch's waiting redactions, then the (target, redaction) pairs that now apply
    because their target arrived in this batch; the waits it ends are deleted."""
    if batch.pending_redactions:
        txn.executemany(_INSERT_PENDING, [(p.target_id, p.redaction_id, batch.room_id, p.sender,
                                           int(p.privileged)) for p in batch.pending_redactions])
    if not batch.arrived:
        return []
    senders = dict(batch.arrived)
    found: list[tuple[Any, ...]] = []
    ids = list(senders)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        txn.execute(_PENDING_FOR.format(", ".join("?" * len(chunk))), (batch.room_id, *chunk))
        found.extend(txn.fetchall())
    applying = [(target_id, redaction_id) for target_id, redaction_id, sender, privileged in found
                if redaction_applies_to(bool(privileged), sender, senders[target_id])]
    if found:
        txn.executemany(_DELETE_PENDING, [(target_id,) for target_id in {row[0] for row in found}])
    return applying


def _event_row(room_id: str, item: PersistItem) -> tuple[Any, ...]:
    stored = item.stored
    event = stored.event
    return (
        stored.stream_ordering, event.event_id, room_id, event.type, event.state_key, event.sender,
        event.depth, event.origin_server_ts, item.received_ts, stored.state_group,
        stored.replaces_state, 1 if stored.contains_url else 0, stored.txn_scope, stored.txn_id,
        encode_canonical_json(event.pdu).decode("utf-8"),
        int(stored.outlier), int(stored.rejected), int(stored.soft_failed),
    )


def apply_redaction_txn(txn: Transaction, room_id: str, target_id: str, redaction_id: str) -> bool:
    """Replace the stored target with its redacted form (same room only; first redaction wins)."""
    txn.execute(_TARGET, (target_id,))
    row = txn.fetchone()
    if row is None or row[1] != room_id or row[2] is not None:
        return False
    txn.execute("SELECT room_version FROM rooms WHERE room_id = ?", (room_id,))
    version_row = txn.fetchone()
    if version_row is None:
        return False
    pdu = json.loads(row[0])
    pruned = redact_pdu(pdu, KNOWN_ROOM_VERSIONS[version_row[0]])
    if "unsigned" in pdu:
        pruned["unsigned"] = {}
    txn.execute(_APPLY_REDACTION, (encode_canonical_json(pruned).decode("utf-8"), redaction_id, target_id))
    txn.execute(_DROP_RELATION, (target_id,))
    delete_search_txn(txn, [target_id])
    return True
