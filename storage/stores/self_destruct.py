"""The ``self_destruct_events`` table, and expunging an event: replacing every stored copy
of its content with the redacted form, in one transaction.

Rows are written with the event (``insert_self_destructs_txn``, from the persister), so an
event that asked to self-destruct is never stored without its timer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import attrs

from homeserver.events.canonical_json import encode_canonical_json
from homeserver.events.redaction import redact_pdu
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from storage.engine import Transaction
from storage.host import StorageHost
from storage.stores.event_search import delete_search_txn
from storage.stores.timers import cancel_timer_txn, schedule_timer_txn

SELF_DESTRUCT_TIMER = "self_destruct"
#: ``events.redacted_by`` of an expunged event: no redaction event did it.
EXPUNGED_MARK = "org.matrix.self_destruct"

_INSERT = (
    "INSERT INTO self_destruct_events (event_id, room_id, sender, stream_ordering, thread_id, expires_at,"
    " after_read_ms, read_ts) VALUES (?, ?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (event_id) DO UPDATE SET stream_ordering = excluded.stream_ordering"
)
_PENDING_READ = (
    "SELECT event_id, sender, stream_ordering, thread_id, after_read_ms, expires_at FROM self_destruct_events"
    " WHERE room_id = ? AND after_read_ms IS NOT NULL AND read_ts IS NULL"
)
_ROOMS_PENDING_READ = (
    "SELECT DISTINCT room_id FROM self_destruct_events WHERE after_read_ms IS NOT NULL AND read_ts IS NULL"
)
_MARK_READ = "UPDATE self_destruct_events SET read_ts = ? WHERE event_id = ? AND read_ts IS NULL"
_READ_RECEIPTS = (
    "SELECT r.user_id, r.thread_id, e.stream_ordering FROM receipts r JOIN events e ON e.event_id = r.event_id"
    " WHERE r.room_id = ? AND r.receipt_type IN ('m.read', 'm.read.private')"
)
_EVENT = "SELECT e.json, e.redacted_by, r.room_version FROM events e JOIN rooms r ON r.room_id = e.room_id" \
         " WHERE e.event_id = ?"
_PRUNE = "UPDATE events SET json = ?, redacted_by = ?, contains_url = 0 WHERE event_id = ?"
_DROP_RELATION = "DELETE FROM event_relations WHERE event_id = ?"
_DELETE = "DELETE FROM self_destruct_events WHERE event_id = ?"
# Edits carry the message's content in m.new_content: the sender's go with the message.
_EDITS = (
    "SELECT r.event_id FROM event_relations r JOIN events e ON e.event_id = r.relates_to_id"
    " WHERE r.relates_to_id = ? AND r.rel_type = 'm.replace' AND r.sender = e.sender"
)


@attrs.frozen(slots=True)
class SelfDestructRow:
    event_id: str
    room_id: str
    sender: str
    stream_ordering: int
    thread_id: str
    expires_at: int | None
    after_read_ms: int | None


@attrs.frozen(slots=True)
class PendingRead:
    """An org.matrix.self_destruct event whose readers have not all read it yet."""

    event_id: str
    sender: str
    stream_ordering: int
    thread_id: str
    after_read_ms: int
    expires_at: int | None


@attrs.frozen(slots=True)
class ReadPosition:
    user_id: str
    thread_id: str
    stream_ordering: int


def insert_self_destructs_txn(txn: Transaction, rows: Iterable[SelfDestructRow]) -> None:
    """Record the events and arm the absolute timers, in the events' own transaction."""
    for row in rows:
        txn.execute(_INSERT, (row.event_id, row.room_id, row.sender, row.stream_ordering, row.thread_id,
                              row.expires_at, row.after_read_ms))
        if row.expires_at is not None:
            schedule_timer_txn(txn, SELF_DESTRUCT_TIMER, row.event_id, row.expires_at)


def expunge_event_txn(txn: Transaction, event_id: str) -> list[str]:
    """Leave only the redacted form of the event, and of its sender's edits of it, wherever
    their content is stored; the IDs of the events whose stored form changed."""
    txn.execute(_EDITS, (event_id,))
    edits = [row[0] for row in txn.fetchall()]
    changed = [e for e in [event_id, *edits] if _prune_txn(txn, e)]
    txn.execute(_DELETE, (event_id,))
    cancel_timer_txn(txn, SELF_DESTRUCT_TIMER, event_id)
    return changed


def _prune_txn(txn: Transaction, event_id: str) -> bool:
    txn.execute(_EVENT, (event_id,))
    row = txn.fetchone()
    changed = False
    if row is not None and row[2] in KNOWN_ROOM_VERSIONS:
        pdu = json.loads(row[0])
        pruned = redact_pdu(pdu, KNOWN_ROOM_VERSIONS[row[2]])
        pruned["unsigned"] = {}
        if pruned != pdu or row[1] is None:
            txn.execute(_PRUNE, (encode_canonical_json(pruned).decode("utf-8"), row[1] or EXPUNGED_MARK,
                                 event_id))
            changed = True
    txn.execute(_DROP_RELATION, (event_id,))
    delete_search_txn(txn, [event_id])
    return changed


class SelfDestructStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def rooms_pending_read(self) -> set[str]:
        rows = await self.db.execute("self_destruct_rooms_pending_read", _ROOMS_PENDING_READ)
        return {row[0] for row in rows}

    async def pending_read(self, room_id: str) -> list[PendingRead]:
        rows = await self.db.execute("self_destruct_pending_read", _PENDING_READ, room_id)
        return [PendingRead(r[0], r[1], int(r[2]), r[3], int(r[4]), None if r[5] is None else int(r[5]))
                for r in rows]

    async def read_positions(self, room_id: str) -> list[ReadPosition]:
        """Every read receipt in the room, with the stream position it is at."""
        rows = await self.db.execute("self_destruct_read_positions", _READ_RECEIPTS, room_id)
        return [ReadPosition(r[0], r[1], int(r[2])) for r in rows]

    async def start_after_read(self, event_id: str, now_ms: int, due_ms: int) -> bool:
        """Everyone has read it: arm its timer (with the row, in one transaction)."""

        def start(txn: Transaction) -> bool:
            txn.execute(_MARK_READ, (now_ms, event_id))
            if txn.rowcount != 1:
                return False
            schedule_timer_txn(txn, SELF_DESTRUCT_TIMER, event_id, due_ms)
            return True

        return await self.db.run_interaction("self_destruct_start_after_read", start)

    async def expunge(self, event_id: str) -> list[str]:
        return await self.db.run_interaction("self_destruct_expunge", expunge_event_txn, event_id)
