"""Retention purges: which rooms have which m.room.retention policy, and deleting a room's
old message events from every table that references them, a batch per transaction.

Never deleted: state events, the room's latest event, and its forward extremities (new
events cite them as prev_events). The same SQL runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json

import attrs

from storage.engine import Transaction
from storage.host import StorageHost
from storage.stores.self_destruct import SELF_DESTRUCT_TIMER
from storage.stores.timers import schedule_timer_txn

#: ``events.redacted_by`` of an event whose redaction was purged.
PURGED_REDACTION_MARK = "org.matrix.redaction_purged"

_POLICIES = (
    "SELECT r.room_id, e.json FROM rooms r"
    " LEFT JOIN current_state_events c ON c.room_id = r.room_id AND c.type = 'm.room.retention'"
    " AND c.state_key = '' LEFT JOIN events e ON e.event_id = c.event_id"
)
_PURGEABLE = (
    "SELECT event_id FROM events WHERE room_id = ? AND state_key IS NULL AND origin_server_ts < ?"
    " AND stream_ordering < (SELECT MAX(stream_ordering) FROM events WHERE room_id = ?)"
    " AND event_id NOT IN (SELECT event_id FROM event_forward_extremities WHERE room_id = ?)"
    " ORDER BY stream_ordering LIMIT ?"
)
_SPARE_SENDERS = " AND sender NOT LIKE ? ESCAPE '!'"
#: (table, column) pairs naming a purged event; every row found is deleted.
REFERENCES: tuple[tuple[str, str], ...] = (
    ("event_edges", "event_id"), ("event_edges", "prev_event_id"),
    ("event_auth_edges", "event_id"), ("event_auth_edges", "auth_event_id"),
    ("event_relations", "event_id"), ("event_relations", "relates_to_id"),
    ("event_txn_ids", "event_id"), ("rejections", "event_id"), ("receipts", "event_id"),
    ("event_backward_extremities", "event_id"), ("self_destruct_events", "event_id"),
    ("event_push_actions", "event_id"), ("event_push_shared", "event_id"), ("event_search", "event_id"),
    ("events", "event_id"),
)
_TIMER_SELECT = "SELECT due_ts FROM timers WHERE kind = ? AND timer_key = ?"
_TIMERS_OF_KIND = "SELECT timer_key FROM timers WHERE kind = ?"
_TIMER_DELETE = "DELETE FROM timers WHERE kind = ? AND timer_key = ?"


@attrs.frozen(slots=True)
class RoomPolicy:
    room_id: str
    #: The m.room.retention content's max_lifetime, if the room has one that is an integer.
    max_lifetime: int | None
    has_event: bool


def _max_lifetime(raw: str | None) -> int | None:
    if raw is None:
        return None
    content = json.loads(raw).get("content")
    value = content.get("max_lifetime") if isinstance(content, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def purge_batch_txn(txn: Transaction, room_id: str, before_ts: int, limit: int,
                    keep_senders_like: str | None = None) -> list[str]:
    """Delete up to ``limit`` of the room's purgeable events older than ``before_ts``
    (sparing senders matching the LIKE pattern ``keep_senders_like``: the admin history purge)."""
    if keep_senders_like is None:
        txn.execute(_PURGEABLE, (room_id, before_ts, room_id, room_id, limit))
    else:
        txn.execute(_PURGEABLE.replace(" ORDER BY", _SPARE_SENDERS + " ORDER BY"),
                    (room_id, before_ts, room_id, room_id, keep_senders_like, limit))
    ids = [row[0] for row in txn.fetchall()]
    if not ids:
        return ids
    marks = ",".join("?" * len(ids))
    for table, column in REFERENCES:
        txn.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", ids)
    txn.execute(f"DELETE FROM timers WHERE kind = ? AND timer_key IN ({marks})", [SELF_DESTRUCT_TIMER, *ids])
    txn.execute(f"UPDATE events SET redacted_by = ? WHERE redacted_by IN ({marks})", [PURGED_REDACTION_MARK, *ids])
    return ids


class RetentionStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def room_policies(self) -> list[RoomPolicy]:
        rows = await self.db.execute("retention_room_policies", _POLICIES)
        return [RoomPolicy(row[0], _max_lifetime(row[1]), row[1] is not None) for row in rows]

    async def purge_batch(self, room_id: str, before_ts: int, limit: int,
                          keep_senders_like: str | None = None) -> list[str]:
        return await self.db.run_interaction("retention_purge_batch", purge_batch_txn, room_id, before_ts, limit,
                                             keep_senders_like)

    async def sync_job_timers(self, kind: str, wanted: dict[str, int]) -> dict[str, int]:
        """Give each wanted job a timer (keeping one already set) and drop timers of jobs
        no longer configured; returns each job's due time."""

        def sync(txn: Transaction) -> dict[str, int]:
            due: dict[str, int] = {}
            for key, first_due in wanted.items():
                txn.execute(_TIMER_SELECT, (kind, key))
                row = txn.fetchone()
                if row is None:
                    schedule_timer_txn(txn, kind, key, first_due)
                    due[key] = first_due
                else:
                    due[key] = int(row[0])
            txn.execute(_TIMERS_OF_KIND, (kind,))
            for (key,) in txn.fetchall():
                if key not in wanted:
                    txn.execute(_TIMER_DELETE, (kind, key))
            return due

        return await self.db.run_interaction("retention_sync_job_timers", sync)

    async def move_timer(self, kind: str, key: str, due_ts: int) -> None:
        await self.db.run_interaction("retention_move_timer", schedule_timer_txn, kind, key, due_ts)
