"""Unread notification counts from the two push tables (SQL and arithmetic, no handlers).

An event's notifications are its ``event_push_shared`` row (if any), which applies to every
local member joined at the time except its sender, and the per-member ``event_push_actions``
rows, which replace the shared row for their member (``notif = 0`` when the member is not
notified). Counting for a member starts at their read position: the furthest ``m.read`` /
``m.read.private`` receipt (unthreaded: every thread; threaded: that thread) and at least
their current join, after which they have been joined throughout, so every shared row past
that position applies to them.

Every member woken by one message asks at once (``PushActionsStore.get_unread_counts``); the
asks are grouped by room and each room costs four queries for the whole batch (receipts,
joins, the room's shared rows since the oldest read position, the asked members'
exceptions), then per member a couple of bisections per thread. A member whose read position
is older than ``SHARED_WINDOW`` shared rows of the room is counted in SQL instead.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

import attrs

from storage.engine import Transaction

UNTHREADED = ""
USERS_PER_QUERY = 500
#: The newest shared rows of a room read for one batch of counts, at most.
SHARED_WINDOW = 5000
#: Far past any stream position ("everything").
ALL = 2 ** 62

_READ = (
    "SELECT r.user_id, r.thread_id, MAX(e.stream_ordering) FROM receipts r"
    " JOIN events e ON e.event_id = r.event_id"
    " WHERE r.room_id = ? AND r.receipt_type IN ('m.read', 'm.read.private') AND r.user_id IN ({users})"
    " GROUP BY r.user_id, r.thread_id"
)
# Counting starts at the user's current join: what notified them before it (their invite) is
# not unread in the room they then joined.
_JOINS = (
    "SELECT user_id, stream_ordering FROM room_members_current"
    " WHERE room_id = ? AND membership = 'join' AND user_id IN ({users})"
)
_SHARED = (
    "SELECT stream_ordering, sender, thread_id, highlight FROM event_push_shared"
    " WHERE room_id = ? AND stream_ordering > ? AND stream_ordering <= ?"
    " ORDER BY stream_ordering DESC LIMIT ?"
)
_EXCEPTIONS = (
    "SELECT user_id, stream_ordering, thread_id, notif, highlight FROM event_push_actions"
    " WHERE room_id = ? AND stream_ordering > ? AND stream_ordering <= ? AND user_id IN ({users})"
)
_OWN_BY_THREAD = (
    "SELECT thread_id, COUNT(*), SUM(highlight) FROM event_push_actions"
    " WHERE user_id = ? AND room_id = ? AND notif = 1 AND stream_ordering > ? AND stream_ordering <= ? {thread}"
    " GROUP BY thread_id"
)
_SHARED_BY_THREAD = (
    "SELECT s.thread_id, COUNT(*), SUM(s.highlight) FROM event_push_shared s"
    " WHERE s.room_id = ? AND s.stream_ordering > ? AND s.stream_ordering <= ? AND s.sender <> ? {thread}"
    " AND NOT EXISTS (SELECT 1 FROM event_push_actions a WHERE a.user_id = ?"
    " AND a.stream_ordering = s.stream_ordering)"
    " GROUP BY s.thread_id"
)


@attrs.frozen
class Counts:
    notifications: int = 0
    highlights: int = 0


#: Per room: {thread_id: Counts} of unread notifying events (threads with none left out).
RoomCounts = dict[str, Counts]
#: One ask: (user_id, room_ids, upto).
Ask = tuple[str, list[str], int]


def _chunks(users: Sequence[str]) -> list[Sequence[str]]:
    return [users[i:i + USERS_PER_QUERY] for i in range(0, len(users), USERS_PER_QUERY)]


def read_positions_txn(txn: Transaction, room_id: str, users: Sequence[str]) -> tuple[
        dict[str, dict[str, int]], set[str]]:
    """Per user {thread_id ('' unthreaded): read up to} in the room, and who is joined."""
    read: dict[str, dict[str, int]] = {user: {} for user in users}
    joined: set[str] = set()
    for chunk in _chunks(users):
        marks = ",".join("?" * len(chunk))
        txn.execute(_READ.format(users=marks), (room_id, *chunk))
        for user_id, thread_id, position in txn.fetchall():
            read[user_id][thread_id] = int(position)
        txn.execute(_JOINS.format(users=marks), (room_id, *chunk))
        for user_id, position in txn.fetchall():
            mine = read[user_id]
            mine[UNTHREADED] = max(mine.get(UNTHREADED, 0), int(position))
            joined.add(user_id)
    return read, joined


def _add(counts: dict[str, list[int]], thread: str, n: int, h: int) -> None:
    found = counts.get(thread)
    if found is None:
        counts[thread] = [n, h]
    else:
        found[0] += n
        found[1] += h


def _finish(counts: dict[str, list[int]]) -> RoomCounts:
    return {thread: Counts(n, h) for thread, (n, h) in counts.items() if n > 0}


def user_room_counts_txn(txn: Transaction, user_id: str, room_id: str, read: dict[str, int], joined: bool,
                         upto: int) -> RoomCounts:
    """One member's counts in one room, in SQL (the slow path: an old read position, a badge)."""
    base = read.get(UNTHREADED, 0)
    later = {t: p for t, p in read.items() if t != UNTHREADED and p > base}

    def own(after: int, thread: str | None) -> list[tuple[str, int, int]]:
        extra = "" if thread is None else "AND thread_id = ?"
        txn.execute(_OWN_BY_THREAD.format(thread=extra),
                    (user_id, room_id, after, upto, *(() if thread is None else (thread,))))
        return [(t, int(n), int(h or 0)) for t, n, h in txn.fetchall()]

    def shared(after: int, thread: str | None) -> list[tuple[str, int, int]]:
        extra = "" if thread is None else "AND s.thread_id = ?"
        txn.execute(_SHARED_BY_THREAD.format(thread=extra),
                    (room_id, after, upto, user_id, *(() if thread is None else (thread,)), user_id))
        return [(t, int(n), int(h or 0)) for t, n, h in txn.fetchall()]

    counts: dict[str, list[int]] = {}
    for count in (own, shared) if joined else (own,):
        # Everything after the unthreaded position, then the threads read further, recounted.
        found = {thread: (n, h) for thread, n, h in count(base, None)}
        for thread, position in later.items():
            if thread in found:
                again = count(position, thread)
                found[thread] = (again[0][1], again[0][2]) if again else (0, 0)
        for thread, (n, h) in found.items():
            _add(counts, thread, n, h)
    return _finish(counts)


@attrs.frozen
class _Shared:
    """A room's shared rows in memory: per thread, positions and a running highlight count."""

    positions: dict[str, list[int]]
    highlights: dict[str, list[int]]
    by_sender: dict[str, list[tuple[int, str, int]]]
    at: dict[int, int]
    #: Rows at or after this position are all here (0: every row after the oldest read).
    complete_from: int

    @classmethod
    def load(cls, txn: Transaction, room_id: str, after: int, upto: int) -> _Shared:
        txn.execute(_SHARED, (room_id, after, upto, SHARED_WINDOW))
        rows = txn.fetchall()
        complete_from = int(rows[-1][0]) if len(rows) == SHARED_WINDOW else 0
        positions: dict[str, list[int]] = {}
        highlights: dict[str, list[int]] = {}
        by_sender: dict[str, list[tuple[int, str, int]]] = {}
        at: dict[int, int] = {}
        for position, sender, thread, highlight in reversed(rows):
            position, highlight = int(position), int(highlight)
            found = positions.get(thread)
            if found is None:
                found = positions[thread] = []
                running = highlights[thread] = [0]
            else:
                running = highlights[thread]
            found.append(position)
            running.append(running[-1] + highlight)
            by_sender.setdefault(sender, []).append((position, thread, highlight))
            at[position] = highlight
        return cls(positions, highlights, by_sender, at, complete_from)


def _batch_counts(shared: _Shared, user_id: str, read: dict[str, int], joined: bool, upto: int,
                  exceptions: list[tuple[int, str, int, int]]) -> RoomCounts:
    base = read.get(UNTHREADED, 0)
    counts: dict[str, list[int]] = {}
    if joined:
        for thread, positions in shared.positions.items():
            floor = max(base, read.get(thread, 0))
            low, high = bisect_right(positions, floor), bisect_right(positions, upto)
            if high > low:
                running = shared.highlights[thread]
                counts[thread] = [high - low, running[high] - running[low]]
        for position, thread, highlight in shared.by_sender.get(user_id, ()):
            if max(base, read.get(thread, 0)) < position <= upto:
                _add(counts, thread, -1, -highlight)
    for position, thread, notif, highlight in exceptions:
        if not max(base, read.get(thread, 0)) < position <= upto:
            continue
        replaced = shared.at.get(position) if joined else None
        if replaced is not None:
            _add(counts, thread, -1, -replaced)
        if notif:
            _add(counts, thread, 1, highlight)
    return _finish(counts)


def unread_counts_txn(txn: Transaction, asks: Sequence[Ask]) -> list[dict[str, RoomCounts]]:
    """The counts for every ask, room by room (a room's queries serve every asker in it)."""
    by_room: dict[str, list[int]] = {}
    for index, (_user, rooms, _upto) in enumerate(asks):
        for room in rooms:
            by_room.setdefault(room, []).append(index)
    results: list[dict[str, RoomCounts]] = [{} for _ in asks]
    for room_id, indices in by_room.items():
        users = sorted({asks[i][0] for i in indices})
        upto = max(asks[i][2] for i in indices)
        read, joined = read_positions_txn(txn, room_id, users)
        oldest = min(read[u].get(UNTHREADED, 0) for u in users)
        shared = _Shared.load(txn, room_id, min((read[u].get(UNTHREADED, 0) for u in joined), default=upto), upto)
        exceptions: dict[str, list[tuple[int, str, int, int]]] = {}
        for chunk in _chunks(users):
            txn.execute(_EXCEPTIONS.format(users=",".join("?" * len(chunk))), (room_id, oldest, upto, *chunk))
            for user_id, position, thread, notif, highlight in txn.fetchall():
                exceptions.setdefault(user_id, []).append((int(position), thread, int(notif), int(highlight)))
        for index in indices:
            user_id, _rooms, asked_upto = asks[index]
            mine = read[user_id]
            is_joined = user_id in joined
            if is_joined and shared.complete_from and mine.get(UNTHREADED, 0) < shared.complete_from:
                results[index][room_id] = user_room_counts_txn(txn, user_id, room_id, mine, True, asked_upto)
            else:
                results[index][room_id] = _batch_counts(shared, user_id, mine, is_joined, asked_upto,
                                                        exceptions.get(user_id, []))
    return results
