"""Writing a batch of a room's new events in ONE transaction.

The per-room queue (homeserver/handlers/rooms/room_queue.py) decides everything (stream
positions, state groups, the new head); this module only turns that decision into
rows, so "200 after commit" covers the event, its state, membership, relations,
transaction ID and any redaction it applies, or none of them.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from homeserver.events.canonical_json import encode_canonical_json
from homeserver.events.redaction import redact_pdu
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from storage.engine import Transaction
from storage.stores.aliases import insert_alias_txn
from storage.stores.current_state import StateKey, update_current_state_txn
from storage.stores.events import StoredEvent
from storage.stores.relations import RelationRow, insert_relations_txn
from storage.stores.room_members import MemberRow, write_members_txn
from storage.stores.rooms import RoomHeadRow, RoomRow, insert_room_txn, set_head_txn
from storage.stores.state import write_group_txn
from storage.stores.txn_ids import insert_txn_id_txn

_INSERT_EVENT = (
    "INSERT INTO events (stream_ordering, event_id, room_id, type, state_key, sender, depth,"
    " origin_server_ts, received_ts, state_group, replaces_state, contains_url, txn_scope, txn_id,"
    " redacted_by, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)"
)
_TARGET = "SELECT json, room_id, redacted_by FROM events WHERE event_id = ?"
_APPLY_REDACTION = "UPDATE events SET json = ?, redacted_by = ?, contains_url = 0 WHERE event_id = ?"
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
class PersistItem:
    stored: StoredEvent
    new_group: NewStateGroup | None
    received_ts: int


@attrs.define
class PersistBatch:
    room_id: str
    items: list[PersistItem] = attrs.field(factory=list)
    new_room: RoomRow | None = None
    new_alias: tuple[str, str] | None = None  # (alias, creator)
    current_state: dict[StateKey, str] = attrs.field(factory=dict)
    head: RoomHeadRow | None = None
    members: list[MemberRow] = attrs.field(factory=list)
    relations: list[RelationRow] = attrs.field(factory=list)
    #: (target event ID, redaction event ID) pairs to apply.
    redactions: list[tuple[str, str]] = attrs.field(factory=list)


def persist_batch_txn(txn: Transaction, batch: PersistBatch) -> list[str]:
    """Write everything; returns the IDs of events whose stored form was redacted."""
    if batch.new_room is not None:
        insert_room_txn(txn, batch.new_room, batch.items[0].received_ts)
    if batch.new_alias is not None:
        alias, creator = batch.new_alias
        if not insert_alias_txn(txn, alias, batch.room_id, creator):
            raise AliasTakenError(alias)
    for item in batch.items:
        if item.new_group is not None:
            group = item.new_group
            write_group_txn(txn, group.group, batch.room_id, group.prev_group, group.chain_length,
                            group.entries)
    txn.executemany(_INSERT_EVENT, [_event_row(batch.room_id, item) for item in batch.items])
    for item in batch.items:
        stored = item.stored
        if stored.txn_scope is not None and stored.txn_id is not None:
            insert_txn_id_txn(txn, stored.txn_scope, stored.txn_id, stored.event_id, batch.room_id,
                              item.received_ts)
    update_current_state_txn(txn, batch.room_id, batch.current_state)
    write_members_txn(txn, batch.members)
    insert_relations_txn(txn, batch.relations)
    if batch.head is not None:
        set_head_txn(txn, batch.room_id, batch.head)
    redacted = []
    for target_id, redaction_id in batch.redactions:
        if apply_redaction_txn(txn, batch.room_id, target_id, redaction_id):
            redacted.append(target_id)
    return redacted


def _event_row(room_id: str, item: PersistItem) -> tuple[Any, ...]:
    stored = item.stored
    event = stored.event
    return (
        stored.stream_ordering, event.event_id, room_id, event.type, event.state_key, event.sender,
        event.depth, event.origin_server_ts, item.received_ts, stored.state_group,
        stored.replaces_state, 1 if stored.contains_url else 0, stored.txn_scope, stored.txn_id,
        encode_canonical_json(event.pdu).decode("utf-8"),
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
    return True
