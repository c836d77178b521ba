"""The push tables: what each event does to each local member, and the unread counts.

Rows are written once per event, after it is persisted, by the push-rule evaluator
(homeserver/handlers/push/): one ``event_push_shared`` row for the members on the server's
default rules when that notifies (``SharedPush``), and an ``event_push_actions`` row
(``PushAction``) for each member whose outcome differs from it (``notif = 0`` included).
Unread counts are never stored: they are counted when asked, from the user's read receipts
on (storage/stores/push_counts.py), so a receipt "resets" them without a write here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from twisted.internet.defer import Deferred

from storage.engine import Transaction
from storage.host import StorageHost
from storage.stores.push_counts import (
    ALL,
    UNTHREADED,
    Counts,
    RoomCounts,
    read_positions_txn,
    unread_counts_txn,
    user_room_counts_txn,
)

__all__ = ["MAIN_THREAD", "UNTHREADED", "Counts", "PushAction", "PushActionsStore", "RoomCounts", "SharedPush"]

MAIN_THREAD = "main"
#: Rows per multi-row INSERT: one round trip for a chunk, not one per row (PostgreSQL).
ROWS_PER_INSERT = 100
USERS_PER_QUERY = 500

_COLUMNS = "user_id, room_id, event_id, stream_ordering, thread_id, notif, highlight, actions, received_ts"
_INSERT = "INSERT INTO event_push_actions (" + _COLUMNS + ") VALUES {values} ON CONFLICT DO NOTHING"
_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
_SHARED_COLUMNS = "stream_ordering, room_id, event_id, sender, thread_id, highlight, actions, received_ts"
_INSERT_SHARED = "INSERT INTO event_push_shared (" + _SHARED_COLUMNS + ") VALUES {values} ON CONFLICT DO NOTHING"
_SHARED_ROW = "(?, ?, ?, ?, ?, ?, ?, ?)"
# Joined rooms where something may be unread: a shared row after the join by someone else,
# or a notifying row of the user's own.
_ROOMS_WITH_NOTIFICATIONS = (
    "SELECT m.room_id FROM room_members_current m WHERE m.user_id = ? AND m.membership = 'join' AND ("
    " EXISTS (SELECT 1 FROM event_push_shared s WHERE s.room_id = m.room_id"
    " AND s.stream_ordering > m.stream_ordering AND s.sender <> m.user_id)"
    " OR EXISTS (SELECT 1 FROM event_push_actions a WHERE a.user_id = m.user_id AND a.room_id = m.room_id"
    " AND a.notif = 1 AND a.stream_ordering > m.stream_ordering))"
)
_NOTIFICATIONS = (
    "SELECT " + _COLUMNS + " FROM event_push_actions"
    " WHERE user_id = ? AND notif = 1 AND stream_ordering < ? {highlight}"
    " ORDER BY stream_ordering DESC LIMIT ?"
)
# The shared rows that apply to the user: in a room they are joined to, after their join, not
# their own, and not replaced by a row of theirs.
_SHARED_NOTIFICATIONS = (
    "SELECT s.room_id, s.event_id, s.stream_ordering, s.thread_id, s.highlight, s.actions, s.received_ts"
    " FROM event_push_shared s JOIN room_members_current m ON m.room_id = s.room_id"
    " WHERE m.user_id = ? AND m.membership = 'join' AND s.stream_ordering > m.stream_ordering"
    " AND s.stream_ordering < ? AND s.sender <> ? {highlight}"
    " AND NOT EXISTS (SELECT 1 FROM event_push_actions a WHERE a.user_id = ?"
    " AND a.stream_ordering = s.stream_ordering)"
    " ORDER BY s.stream_ordering DESC LIMIT ?"
)

_GET_EVALUATED = "SELECT stream_ordering FROM push_evaluated_upto WHERE id = 1"
_SET_EVALUATED = (
    "INSERT INTO push_evaluated_upto (id, stream_ordering) VALUES (1, ?)"
    " ON CONFLICT (id) DO UPDATE SET stream_ordering = excluded.stream_ordering"
)
_MAX_EVENT = "SELECT MAX(stream_ordering) FROM events"
_EVENTS_AFTER = (
    "SELECT event_id FROM events WHERE stream_ordering > ? AND stream_ordering <= ?"
    " AND outlier = 0 AND rejected = 0 AND soft_failed = 0 ORDER BY stream_ordering LIMIT ?"
)
_WRITTEN = "SELECT DISTINCT stream_ordering FROM {table} WHERE room_id = ? AND stream_ordering IN ({positions})"


class PushAction(NamedTuple):
    """One member's row (an exception to the event's shared row, or the event's only word for
    them). A NamedTuple, not attrs: cheap to build in the push evaluator's loop."""

    user_id: str
    room_id: str
    event_id: str
    stream_ordering: int
    thread_id: str
    notif: bool
    highlight: bool
    actions: list[Any]
    received_ts: int


class SharedPush(NamedTuple):
    """One event's row for every local member joined at the time on the shared outcome."""

    stream_ordering: int
    room_id: str
    event_id: str
    sender: str
    thread_id: str
    highlight: bool
    actions: list[Any]
    received_ts: int

    def for_user(self, user_id: str) -> PushAction:
        return PushAction(user_id, self.room_id, self.event_id, self.stream_ordering, self.thread_id, True,
                          self.highlight, self.actions, self.received_ts)


_CountsAsk = tuple[str, list[str], int, "Deferred[dict[str, RoomCounts]]"]


def _row(row: Sequence[Any]) -> PushAction:
    return PushAction(row[0], row[1], row[2], int(row[3]), row[4], bool(row[5]), bool(row[6]),
                      json.loads(row[7]), int(row[8]))


def _insert_txn(txn: Transaction, sql: str, row_sql: str, rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    if txn.engine_name == "sqlite3":
        # In-process: one prepared statement for every row is cheapest.
        txn.executemany(sql.format(values=row_sql), rows)
        return
    # Over the network: a round trip per chunk of rows, not per row.
    for start in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[start:start + ROWS_PER_INSERT]
        txn.execute(sql.format(values=",".join([row_sql] * len(chunk))), [v for row in chunk for v in row])


class PushActionsStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db
        #: Unread-count reads waiting for the next shared transaction (see get_unread_counts).
        self._asks: list[_CountsAsk] = []
        self._counting = False

    async def add_push_actions(self, actions: Sequence[PushAction], shared: Sequence[SharedPush] = ()) -> None:
        """Write events' member rows and shared rows in one transaction; a row already there is kept."""
        if not actions and not shared:
            return
        encoded: dict[int, str] = {}  # many rows share one rule's actions list

        def text(value: list[Any]) -> str:
            found = encoded.get(id(value))
            if found is None:
                found = encoded[id(value)] = json.dumps(value, separators=(",", ":"))
            return found

        rows = [(a.user_id, a.room_id, a.event_id, a.stream_ordering, a.thread_id, int(a.notif),
                 int(a.highlight), text(a.actions), a.received_ts) for a in actions]
        shared_rows = [(s.stream_ordering, s.room_id, s.event_id, s.sender, s.thread_id, int(s.highlight),
                        text(s.actions), s.received_ts) for s in shared]

        def insert(txn: Transaction) -> None:
            _insert_txn(txn, _INSERT, _ROW, rows)
            _insert_txn(txn, _INSERT_SHARED, _SHARED_ROW, shared_rows)

        # Derived rows: after a crash, evaluation starts again from the stored watermark
        # (a durable commit, so every row written before it is durable too).
        await self.db.run_derived_interaction("add_push_actions", insert)

    async def get_read_positions(self, user_id: str, room_ids: Iterable[str]) -> dict[str, dict[str, int]]:
        """Per room, {thread_id ('' unthreaded): where the user has read up to}: their furthest
        read receipt of each thread, and for '' at least their current join."""
        rooms = list(room_ids)

        def read(txn: Transaction) -> dict[str, dict[str, int]]:
            return {room: read_positions_txn(txn, room, [user_id])[0][user_id] for room in rooms}

        return await self.db.run_interaction("push_read_positions", read) if rooms else {}

    async def get_unread_counts(self, user_id: str, room_ids: Iterable[str], upto: int) -> dict[str, RoomCounts]:
        """Unread notifying events at or before ``upto`` per room and thread; one transaction for all rooms."""
        rooms = list(room_ids)
        if not rooms:
            return {}
        # Every member woken by one message asks at once: the first read goes at once, and
        # those arriving while it runs share the next transaction, counted room by room for
        # all of them (push_counts.py: a few queries per room, not per member).
        done: Deferred[dict[str, RoomCounts]] = Deferred()
        self._asks.append((user_id, rooms, upto, done))
        if not self._counting:
            self._counting = True
            Deferred.fromCoroutine(self._count_asked())
        return await done

    async def _count_asked(self) -> None:
        try:
            while self._asks:
                asks, self._asks = self._asks, []
                try:
                    found = await self.db.run_interaction("push_unread_counts", unread_counts_txn,
                                                          [(user, rooms, upto) for user, rooms, upto, _ in asks])
                except Exception as exc:  # each asker's caller sees it
                    for *_ask, done in asks:
                        done.errback(exc)
                    continue
                for (*_ask, done), counts in zip(asks, found, strict=True):
                    done.callback(counts)
        finally:
            self._counting = False

    async def get_badge_count(self, user_id: str) -> int:
        """How many joined rooms have unread notifying events (Synapse's ``group_unread_count_by_room``)."""

        def count(txn: Transaction) -> int:
            txn.execute(_ROOMS_WITH_NOTIFICATIONS, (user_id,))
            rooms = [row[0] for row in txn.fetchall()]
            unread = 0
            for room in rooms:
                read, _joined = read_positions_txn(txn, room, [user_id])
                if user_room_counts_txn(txn, user_id, room, read[user_id], True, ALL):
                    unread += 1
            return unread

        return await self.db.run_interaction("push_badge_count", count)

    async def get_notifications(self, user_id: str, before: int | None, limit: int,
                                only_highlight: bool) -> list[PushAction]:
        """The user's notifications, newest first, with ``stream_ordering < before``: their own
        notifying rows, and the shared rows that apply to them (rooms they are joined to now,
        since their join)."""
        highlight = "AND highlight = 1" if only_highlight else ""
        below = before if before is not None else ALL

        def read(txn: Transaction) -> list[PushAction]:
            txn.execute(_NOTIFICATIONS.format(highlight=highlight), (user_id, below, limit))
            found = [_row(row) for row in txn.fetchall()]
            txn.execute(_SHARED_NOTIFICATIONS.format(highlight=highlight.replace("highlight", "s.highlight")),
                        (user_id, below, user_id, user_id, limit))
            found += [PushAction(user_id, room, event, int(position), thread, True, bool(h), json.loads(actions),
                                 int(ts)) for room, event, position, thread, h, actions, ts in txn.fetchall()]
            found.sort(key=lambda a: a.stream_ordering, reverse=True)
            return found[:limit]

        return await self.db.run_interaction("get_notifications", read)

    async def get_evaluated_upto(self) -> int:
        """Where evaluation had got to; the newest event when it never ran (history is not evaluated)."""

        def read(txn: Transaction) -> int:
            txn.execute(_GET_EVALUATED)
            row = txn.fetchone()
            if row is not None:
                return int(row[0])
            txn.execute(_MAX_EVENT)
            found = txn.fetchone()
            position = int(found[0]) if found and found[0] is not None else 0
            txn.execute(_SET_EVALUATED, (position,))
            return position

        return await self.db.run_interaction("get_push_evaluated_upto", read)

    async def set_evaluated_upto(self, position: int) -> None:
        await self.db.execute("set_push_evaluated_upto", _SET_EVALUATED, position)

    async def get_event_ids_after(self, position: int, upto: int, limit: int) -> list[str]:
        """Timeline events in (position, upto], oldest first (what evaluation missed in a crash)."""
        rows = await self.db.execute("push_events_after", _EVENTS_AFTER, position, upto, limit)
        return [row[0] for row in rows]

    async def get_written(self, room_id: str, stream_orderings: Sequence[int]) -> set[int]:
        """Those of the events at ``stream_orderings`` whose push rows are already written (an
        event's rows are written in one transaction, so any row means all of them)."""
        positions = list(stream_orderings)

        def select(txn: Transaction) -> set[int]:
            found: set[int] = set()
            for start in range(0, len(positions), USERS_PER_QUERY):
                batch = positions[start:start + USERS_PER_QUERY]
                marks = ",".join("?" * len(batch))
                for table in ("event_push_shared", "event_push_actions"):
                    txn.execute(_WRITTEN.format(table=table, positions=marks), (room_id, *batch))
                    found.update(int(row[0]) for row in txn.fetchall())
            return found

        if not positions:
            return set()
        return await self.db.run_interaction("push_written_events", select)
