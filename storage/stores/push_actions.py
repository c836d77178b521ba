"""The ``event_push_actions`` table: who each event notifies, and how.

Rows are written once per event, after it is persisted, by the push-rule evaluator
(homeserver/handlers/push/). Unread counts are never stored: they are the rows after the
user's read receipt (``m.read`` or ``m.read.private``; an unthreaded receipt covers every
thread, a threaded one only its thread), counted when asked, so a receipt "resets" them
without a write here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import attrs
from twisted.internet.defer import Deferred

from storage.engine import Transaction
from storage.host import StorageHost

MAIN_THREAD = "main"
UNTHREADED = ""
#: Rows per multi-row INSERT: one round trip for a chunk, not one per row (PostgreSQL).
ROWS_PER_INSERT = 100
ROOMS_PER_QUERY = 500

_COLUMNS = "user_id, room_id, event_id, stream_ordering, thread_id, notif, highlight, actions, received_ts"
_INSERT = "INSERT INTO event_push_actions (" + _COLUMNS + ") VALUES {values} ON CONFLICT DO NOTHING"
_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
_READ_POSITIONS = (
    "SELECT r.room_id, r.thread_id, MAX(e.stream_ordering) FROM receipts r"
    " JOIN events e ON e.event_id = r.event_id"
    " WHERE r.user_id = ? AND r.receipt_type IN ('m.read', 'm.read.private') AND r.room_id IN ({rooms})"
    " GROUP BY r.room_id, r.thread_id"
)
# Counting starts at the user's current join: what notified them before it (their invite) is
# not unread in the room they then joined.
_JOIN_POSITIONS = (
    "SELECT room_id, stream_ordering FROM room_members_current"
    " WHERE user_id = ? AND membership = 'join' AND room_id IN ({rooms})"
)
_COUNTS_BY_THREAD = (
    "SELECT thread_id, COUNT(*), SUM(highlight) FROM event_push_actions"
    " WHERE user_id = ? AND room_id = ? AND notif = 1 AND stream_ordering > ? AND stream_ordering <= ?"
    " GROUP BY thread_id"
)
_COUNT_IN_THREAD = (
    "SELECT COUNT(*), SUM(highlight) FROM event_push_actions"
    " WHERE user_id = ? AND room_id = ? AND thread_id = ? AND notif = 1"
    " AND stream_ordering > ? AND stream_ordering <= ?"
)
_JOINED_ROOMS_WITH_ACTIONS = (
    "SELECT DISTINCT a.room_id FROM event_push_actions a JOIN room_members_current m"
    " ON m.room_id = a.room_id AND m.user_id = a.user_id"
    " WHERE a.user_id = ? AND m.membership = 'join' AND a.notif = 1"
)
_NOTIFICATIONS = (
    "SELECT " + _COLUMNS + " FROM event_push_actions"
    " WHERE user_id = ? AND notif = 1 AND stream_ordering < ? {highlight}"
    " ORDER BY stream_ordering DESC LIMIT ?"
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
_EXISTING = "SELECT user_id FROM event_push_actions WHERE stream_ordering = ? AND user_id IN ({users})"


class PushAction(NamedTuple):
    """One row. A NamedTuple, not attrs: one is built per recipient of every event, in the
    push evaluator's hot loop (bench/RESULTS.md, issue 11), and a tuple builds twice as fast."""

    user_id: str
    room_id: str
    event_id: str
    stream_ordering: int
    thread_id: str
    notif: bool
    highlight: bool
    actions: list[Any]
    received_ts: int


@attrs.frozen
class Counts:
    notifications: int = 0
    highlights: int = 0


#: Per room: {thread_id: Counts} of unread notifying events (threads with none left out).
RoomCounts = dict[str, Counts]


def _row(row: Sequence[Any]) -> PushAction:
    return PushAction(row[0], row[1], row[2], int(row[3]), row[4], bool(row[5]), bool(row[6]),
                      json.loads(row[7]), int(row[8]))


def _read_positions_txn(txn: Transaction, user_id: str, rooms: list[str]) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = {room: {} for room in rooms}
    for start in range(0, len(rooms), ROOMS_PER_QUERY):
        batch = rooms[start:start + ROOMS_PER_QUERY]
        txn.execute(_READ_POSITIONS.format(rooms=",".join("?" * len(batch))), (user_id, *batch))
        for room_id, thread_id, position in txn.fetchall():
            found[room_id][thread_id] = int(position)
        txn.execute(_JOIN_POSITIONS.format(rooms=",".join("?" * len(batch))), (user_id, *batch))
        for room_id, position in txn.fetchall():
            read = found[room_id]
            read[UNTHREADED] = max(read.get(UNTHREADED, 0), int(position))
    return found


def _room_counts_txn(txn: Transaction, user_id: str, room_id: str, read: dict[str, int],
                     upto: int) -> RoomCounts:
    unthreaded = read.get(UNTHREADED, 0)
    txn.execute(_COUNTS_BY_THREAD, (user_id, room_id, unthreaded, upto))
    counts = {thread: Counts(int(n), int(h or 0)) for thread, n, h in txn.fetchall()}
    for thread, position in read.items():
        if thread == UNTHREADED or position <= unthreaded or thread not in counts:
            continue
        txn.execute(_COUNT_IN_THREAD, (user_id, room_id, thread, position, upto))
        found = txn.fetchone()
        n, h = (int(found[0]), int(found[1] or 0)) if found else (0, 0)
        if n:
            counts[thread] = Counts(n, h)
        else:
            del counts[thread]
    return counts


_CountsAsk = tuple[str, list[str], int, "Deferred[dict[str, RoomCounts]]"]


class PushActionsStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db
        #: Unread-count reads waiting for the next shared transaction (see get_unread_counts).
        self._asks: list[_CountsAsk] = []
        self._counting = False

    async def add_push_actions(self, actions: Sequence[PushAction]) -> None:
        """Write one event's (or several events') actions; a row already there is kept."""
        if not actions:
            return
        encoded: dict[int, str] = {}  # many rows share one rule's actions list
        rows = []
        for a in actions:
            text = encoded.get(id(a.actions))
            if text is None:
                text = encoded[id(a.actions)] = json.dumps(a.actions, separators=(",", ":"))
            rows.append((a.user_id, a.room_id, a.event_id, a.stream_ordering, a.thread_id, int(a.notif),
                         int(a.highlight), text, a.received_ts))

        def insert(txn: Transaction) -> None:
            if txn.engine_name == "sqlite3":
                # In-process: one prepared statement for every row is cheapest.
                txn.executemany(_INSERT.format(values=_ROW), rows)
                return
            # Over the network: a round trip per chunk of rows, not per row.
            for start in range(0, len(rows), ROWS_PER_INSERT):
                chunk = rows[start:start + ROWS_PER_INSERT]
                txn.execute(_INSERT.format(values=",".join([_ROW] * len(chunk))), [v for row in chunk for v in row])

        await self.db.run_interaction("add_push_actions", insert)

    async def get_read_positions(self, user_id: str, room_ids: Iterable[str]) -> dict[str, dict[str, int]]:
        """Per room, {thread_id ('' unthreaded): where the user has read up to}: their furthest
        read receipt of each thread, and for '' at least their current join."""
        rooms = list(room_ids)
        if not rooms:
            return {}
        return await self.db.run_interaction("push_read_positions", _read_positions_txn, user_id, rooms)

    async def get_unread_counts(self, user_id: str, room_ids: Iterable[str], upto: int) -> dict[str, RoomCounts]:
        """Unread notifying events at or before ``upto`` per room and thread; one transaction for all rooms."""
        rooms = list(room_ids)
        if not rooms:
            return {}
        # Every member woken by one message asks at once: the first read goes at once, and
        # those arriving while it runs share the next transaction (one thread hop, not 1,500).
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
                    found = await self.db.run_interaction("push_unread_counts", _unread_counts_txn,
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
            txn.execute(_JOINED_ROOMS_WITH_ACTIONS, (user_id,))
            rooms = [row[0] for row in txn.fetchall()]
            read = _read_positions_txn(txn, user_id, rooms)
            upto = 2 ** 62
            return sum(1 for room in rooms if _room_counts_txn(txn, user_id, room, read[room], upto))

        return await self.db.run_interaction("push_badge_count", count)

    async def get_notifications(self, user_id: str, before: int | None, limit: int,
                                only_highlight: bool) -> list[PushAction]:
        """The user's notifying actions, newest first, with ``stream_ordering < before``."""
        sql = _NOTIFICATIONS.format(highlight="AND highlight = 1" if only_highlight else "")
        rows = await self.db.execute("get_notifications", sql, user_id,
                                     before if before is not None else 2 ** 62, limit)
        return [_row(row) for row in rows]

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

    async def get_existing(self, stream_ordering: int, user_ids: Sequence[str]) -> set[str]:
        """The users who already have a row for the event at ``stream_ordering``."""
        users = list(user_ids)

        def select(txn: Transaction) -> set[str]:
            found: set[str] = set()
            for start in range(0, len(users), ROOMS_PER_QUERY):
                batch = users[start:start + ROOMS_PER_QUERY]
                txn.execute(_EXISTING.format(users=",".join("?" * len(batch))), (stream_ordering, *batch))
                found.update(row[0] for row in txn.fetchall())
            return found

        if not users:
            return set()
        return await self.db.run_interaction("push_existing_actions", select)


def _unread_counts_txn(txn: Transaction, asks: list[tuple[str, list[str], int]]) -> list[dict[str, RoomCounts]]:
    results = []
    for user_id, rooms, upto in asks:
        read = _read_positions_txn(txn, user_id, rooms)
        results.append({room: _room_counts_txn(txn, user_id, room, read[room], upto) for room in rooms})
    return results
