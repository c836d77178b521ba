"""The events table: reading stored events by ID, by stream position and in topological order.

Events are immutable except for redaction and de-outliering, so reads go through a
bounded LRU cache keyed by event ID; the persister refreshes an entry after it changes.

Every read of a room's timeline skips events that are not part of it: outliers (known
without their state), rejected and soft-failed events. They stay in the table (and in
the DAG), and `get_event(s)` still returns them, flagged, for the pipeline's use.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from homeserver.events.event import Event
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from storage.cache_stats import cache_stats
from storage.engine import Transaction
from storage.host import StorageHost
from storage.sharded_stream import SharedSequence
from storage.streams import Streams, StreamWriter

EVENT_CACHE_SIZE = 20_000
EVENTS_STREAM = "events"

_COLUMNS = (
    "e.event_id, e.stream_ordering, e.state_group, e.replaces_state, e.txn_scope, e.txn_id,"
    " e.redacted_by, e.json, r.room_version, e.contains_url, e.outlier, e.rejected, e.soft_failed"
)
#: The events a client may ever see in a room's timeline.
IN_TIMELINE = "e.outlier = 0 AND e.rejected = 0 AND e.soft_failed = 0"
_SELECT_BY_IDS = f"SELECT {_COLUMNS} FROM events e JOIN rooms r ON r.room_id = e.room_id WHERE e.event_id IN "
_SELECT_ROOM_RANGE = (
    f"SELECT {_COLUMNS} FROM events e JOIN rooms r ON r.room_id = e.room_id"
    " WHERE e.room_id = ? AND e.stream_ordering > ? AND e.stream_ordering <= ? AND " + IN_TIMELINE
)
_SELECT_ROOM = (
    f"SELECT {_COLUMNS} FROM events e JOIN rooms r ON r.room_id = e.room_id"
    " WHERE e.room_id = ? AND " + IN_TIMELINE
)
_MIN_STREAM = "SELECT MIN(stream_ordering) FROM events"
_MAX_STREAM = "SELECT MAX(stream_ordering) FROM events"
_STREAM_OF_EVENT = "SELECT stream_ordering FROM events WHERE event_id = ?"


@attrs.frozen(slots=True)
class StoredEvent:
    """An event as we hold it, with where it sits in our streams."""

    event: Event
    #: Position in the events stream; negative for outliers (never in a sync range).
    stream_ordering: int
    #: The state group holding the room state AFTER this event (None for outliers).
    #: A rejected event changes nothing: its group is the state before it.
    state_group: int | None
    #: For state events: the event this one replaced in the room state.
    replaces_state: str | None
    txn_scope: str | None
    txn_id: str | None
    redacted_by: str | None
    contains_url: bool
    outlier: bool = False
    rejected: bool = False
    soft_failed: bool = False

    @property
    def event_id(self) -> str:
        return self.event.event_id

    @property
    def in_timeline(self) -> bool:
        """Part of the room as clients see it (not an outlier, rejected or soft-failed)."""
        return not (self.outlier or self.rejected or self.soft_failed)

    @property
    def depth(self) -> int:
        return self.event.depth


@attrs.frozen(slots=True)
class EventFilter:
    """The RoomEventFilter subset applied in SQL (types may end with a `*` wildcard)."""

    types: Sequence[str] | None = None
    not_types: Sequence[str] = ()
    senders: Sequence[str] | None = None
    not_senders: Sequence[str] = ()
    contains_url: bool | None = None

    def matches(self, stored: StoredEvent) -> bool:
        event = stored.event
        if self.types is not None and not any(_type_matches(t, event.type) for t in self.types):
            return False
        if any(_type_matches(t, event.type) for t in self.not_types):
            return False
        if self.senders is not None and event.sender not in self.senders:
            return False
        if event.sender in self.not_senders:
            return False
        if self.contains_url is not None and stored.contains_url != self.contains_url:
            return False
        return True


def _type_matches(pattern: str, event_type: str) -> bool:
    if pattern.endswith("*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def _filter_sql(event_filter: EventFilter | None) -> tuple[str, list[Any]]:
    if event_filter is None:
        return "", []
    clauses: list[str] = []
    args: list[Any] = []
    if event_filter.types is not None:
        if not event_filter.types:
            return " AND 1 = 0", []
        parts = []
        for pattern in event_filter.types:
            if pattern.endswith("*"):
                parts.append("e.type LIKE ?")
                args.append(_like_prefix(pattern[:-1]))
            else:
                parts.append("e.type = ?")
                args.append(pattern)
        clauses.append("(" + " OR ".join(parts) + ")")
    for pattern in event_filter.not_types:
        if pattern.endswith("*"):
            clauses.append("e.type NOT LIKE ?")
            args.append(_like_prefix(pattern[:-1]))
        else:
            clauses.append("e.type <> ?")
            args.append(pattern)
    if event_filter.senders is not None:
        if not event_filter.senders:
            return " AND 1 = 0", []
        clauses.append("e.sender IN (" + ",".join("?" * len(event_filter.senders)) + ")")
        args.extend(event_filter.senders)
    if event_filter.not_senders:
        clauses.append("e.sender NOT IN (" + ",".join("?" * len(event_filter.not_senders)) + ")")
        args.extend(event_filter.not_senders)
    if event_filter.contains_url is not None:
        clauses.append("e.contains_url = ?")
        args.append(1 if event_filter.contains_url else 0)
    if not clauses:
        return "", []
    return " AND " + " AND ".join(clauses), args


def _like_prefix(prefix: str) -> str:
    # No ESCAPE clause portable enough for both engines; drop wildcards from the prefix.
    return prefix.replace("%", "_") + "%"


def row_to_stored(row: Sequence[Any]) -> StoredEvent:
    (event_id, stream, group, replaces, scope, txn_id, redacted_by, raw, version, url,
     outlier, rejected, soft_failed) = row
    room_version = KNOWN_ROOM_VERSIONS[version]
    event = Event.from_pdu(json.loads(raw), room_version, event_id=event_id)
    return StoredEvent(event, int(stream), None if group is None else int(group), replaces, scope,
                       txn_id, redacted_by, bool(url), bool(outlier), bool(rejected), bool(soft_failed))


class EventStore:
    """Reads events; writes happen in storage/stores/events_persist.py."""

    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db
        self._cache: OrderedDict[str, StoredEvent] = OrderedDict()
        self.cache_stats = cache_stats("get_event", self._cache)
        self.streams: Streams = hs.get(Streams)
        self._lowest_outlier: int | None = None
        #: Set when several persisters write events (homeserver/replication/persisters.py).
        self.shared_outliers: SharedSequence | None = None
        self._invalidation_listeners: list[Callable[[str], None]] = []
        #: Bumped by every invalidation: a read that started before one (and may have read
        #: the row as it was) must not put what it read into the cache.
        self._epoch = 0

    async def stream_writer(self) -> StreamWriter:
        """The "events" stream's writer (created on first use)."""
        return await self.streams.writer(EVENTS_STREAM, "events", "stream_ordering")

    async def get_max_stream_position(self) -> int:
        """The highest stream position every reader may look at (never past a gap)."""
        return (await self.stream_writer()).get_current_token()

    async def allocate_outlier_orderings(self, count: int) -> list[int]:
        """Negative, decreasing orderings for outliers: unique, and below every sync range."""
        if self._lowest_outlier is None:
            rows = await self.db.execute("min_stream_ordering", _MIN_STREAM)
            lowest = min(0, int(rows[0][0])) if rows and rows[0][0] is not None else 0
            if self._lowest_outlier is None:
                self._lowest_outlier = lowest
        if self.shared_outliers is not None:  # several persisters: one sequence for all
            return await self.shared_outliers.allocate(count, self._lowest_outlier)
        first = self._lowest_outlier - 1
        self._lowest_outlier -= count
        return list(range(first, first - count, -1))

    async def get_event(self, event_id: str) -> StoredEvent | None:
        return (await self.get_events([event_id])).get(event_id)

    async def get_events(self, event_ids: Iterable[str]) -> dict[str, StoredEvent]:
        """Events by ID (missing ones are simply absent from the result)."""
        wanted = list(dict.fromkeys(event_ids))
        found: dict[str, StoredEvent] = {}
        missing = []
        for event_id in wanted:
            cached = self._cache.get(event_id)
            if cached is not None:
                self._cache.move_to_end(event_id)
                found[event_id] = cached
            else:
                missing.append(event_id)
        self.cache_stats.count(True, len(wanted) - len(missing))
        self.cache_stats.count(False, len(missing))
        if missing:
            epoch = self._epoch
            fetched = await self.db.run_interaction("get_events", self._fetch, missing)
            for stored in fetched:
                found[stored.event_id] = stored
            self._remember_read(fetched, epoch)
        return found

    def _fetch(self, txn: Transaction, event_ids: list[str]) -> list[StoredEvent]:
        return fetch_events_txn(txn, event_ids)

    def _remember_read(self, events: list[StoredEvent], epoch: int) -> None:
        if epoch == self._epoch:
            for stored in events:
                self._remember(stored)

    def _remember(self, stored: StoredEvent) -> None:
        self._cache[stored.event_id] = stored
        if len(self._cache) > EVENT_CACHE_SIZE:
            self._cache.popitem(last=False)

    def prime_cache(self, stored: StoredEvent) -> None:
        """Called after a commit with the events just written."""
        self._remember(stored)

    @property
    def invalidations(self) -> int:
        """How many invalidations so far: a cache of formatted events keyed by it drops them all."""
        return self._epoch

    def add_invalidation_listener(self, listener: Callable[[str], None]) -> None:
        """Hear every local invalidation (replication tells the other processes)."""
        self._invalidation_listeners.append(listener)

    def invalidate(self, event_id: str, *, replicated: bool = False) -> None:
        """Drop a changed event; ``replicated`` when another process changed it (not passed on)."""
        self._epoch += 1
        self._cache.pop(event_id, None)
        if not replicated:
            for listener in self._invalidation_listeners:
                listener(event_id)

    async def get_stream_ordering(self, event_id: str) -> int | None:
        rows = await self.db.execute("get_stream_ordering", _STREAM_OF_EVENT, event_id)
        return int(rows[0][0]) if rows else None

    async def get_room_events_between(
        self,
        room_id: str,
        from_stream: int,
        to_stream: int,
        limit: int,
        newest_first: bool = True,
        event_filter: EventFilter | None = None,
    ) -> list[StoredEvent]:
        """Room events with from_stream < stream_ordering <= to_stream.

        `newest_first` picks which end of the range the `limit` is taken from and
        the order of the result. Sync calls this for a room's timeline.
        """
        where, args = _filter_sql(event_filter)
        order = "DESC" if newest_first else "ASC"
        sql = f"{_SELECT_ROOM_RANGE}{where} ORDER BY e.stream_ordering {order} LIMIT ?"

        def fetch(txn: Transaction) -> list[StoredEvent]:
            txn.execute(sql, [room_id, from_stream, to_stream, *args, limit])
            return [row_to_stored(row) for row in txn.fetchall()]

        epoch = self._epoch
        events = await self.db.run_interaction("get_room_events_between", fetch)
        self._remember_read(events, epoch)
        return events


    async def get_room_events_by_timestamp(self, room_id: str, ts: int, forwards: bool,
                                           limit: int) -> list[StoredEvent]:
        """/timestamp_to_event: timeline events at or after ``ts`` (``forwards``, oldest
        first) or at or before it (newest first), at most ``limit``."""
        op, order = (">=", "ASC") if forwards else ("<=", "DESC")
        sql = (f"{_SELECT_ROOM} AND e.origin_server_ts {op} ?"
               f" ORDER BY e.origin_server_ts {order}, e.stream_ordering {order} LIMIT ?")

        def fetch(txn: Transaction) -> list[StoredEvent]:
            txn.execute(sql, [room_id, ts, limit])
            return [row_to_stored(row) for row in txn.fetchall()]

        return await self.db.run_interaction("get_room_events_by_timestamp", fetch)

    async def get_room_events_topological(
        self,
        room_id: str,
        from_key: TopologicalKey,
        to_key: TopologicalKey | None,
        backwards: bool,
        limit: int,
        max_stream: int,
        event_filter: EventFilter | None = None,
    ) -> list[StoredEvent]:
        """/messages and /context: a room's timeline in topological order (depth, then stream).

        Backwards: events at or before `from_key` and after `to_key`, newest first.
        Forwards: events after `from_key` and at or before `to_key`, oldest first.
        Nothing above `max_stream` (the stream's current token) is read, so a page never
        reaches past a write still in flight. An event that arrives late but belongs
        early (backfill) sorts by its depth, where it belongs.
        """
        start, start_args = _at_or_before(from_key) if backwards else _after(from_key)
        clauses, args = [start, "e.stream_ordering <= ?"], [*start_args, max_stream]
        if to_key is not None:
            end, end_args = _after(to_key) if backwards else _at_or_before(to_key)
            clauses.append(end)
            args.extend(end_args)
        where, filter_args = _filter_sql(event_filter)
        order = "DESC" if backwards else "ASC"
        sql = (f"{_SELECT_ROOM} AND {' AND '.join(clauses)}{where}"
               f" ORDER BY e.depth {order}, e.stream_ordering {order} LIMIT ?")

        def fetch(txn: Transaction) -> list[StoredEvent]:
            txn.execute(sql, [room_id, *args, *filter_args, limit])
            return [row_to_stored(row) for row in txn.fetchall()]

        epoch = self._epoch
        events = await self.db.run_interaction("get_room_events_topological", fetch)
        self._remember_read(events, epoch)
        return events


#: A position in a room's topological order: (depth, stream_ordering), or (None, stream)
#: for a position known only in the stream (a sync token), compared on the stream alone.
TopologicalKey = tuple[int | None, int]


def _at_or_before(key: TopologicalKey) -> tuple[str, list[Any]]:
    depth, stream = key
    if depth is None:
        return "e.stream_ordering <= ?", [stream]
    return "(e.depth < ? OR (e.depth = ? AND e.stream_ordering <= ?))", [depth, depth, stream]


def _after(key: TopologicalKey) -> tuple[str, list[Any]]:
    depth, stream = key
    if depth is None:
        return "e.stream_ordering > ?", [stream]
    return "(e.depth > ? OR (e.depth = ? AND e.stream_ordering > ?))", [depth, depth, stream]


def fetch_events_txn(txn: Transaction, event_ids: Sequence[str]) -> list[StoredEvent]:
    results: list[StoredEvent] = []
    for start in range(0, len(event_ids), 500):
        chunk = event_ids[start : start + 500]
        txn.execute(_SELECT_BY_IDS + "(" + ",".join("?" * len(chunk)) + ")", chunk)
        results.extend(row_to_stored(row) for row in txn.fetchall())
    return results
