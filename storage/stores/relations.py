"""Event relations (m.relates_to): annotations, references, threads, edits."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs
from twisted.internet.defer import Deferred

from storage.engine import Transaction
from storage.host import StorageHost

_INSERT = (
    "INSERT INTO event_relations (event_id, relates_to_id, rel_type, aggregation_key, room_id, type,"
    " sender, stream_ordering) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_THREAD_ROOTS = (
    "SELECT relates_to_id, MAX(stream_ordering) AS latest FROM event_relations"
    " WHERE room_id = ? AND rel_type = 'm.thread'{participated} GROUP BY relates_to_id"
    " HAVING MAX(stream_ordering) < ? ORDER BY latest DESC LIMIT ?"
)


@attrs.frozen(slots=True)
class RelationRow:
    event_id: str
    relates_to_id: str
    rel_type: str
    aggregation_key: str | None
    room_id: str
    type: str
    sender: str
    stream_ordering: int


@attrs.frozen(slots=True)
class ThreadSummary:
    count: int
    latest_event_id: str
    user_participated: bool


_THREAD_SUMMARY = (
    "SELECT relates_to_id, COUNT(*), MAX(stream_ordering),"
    " SUM(CASE WHEN sender = ? THEN 1 ELSE 0 END) FROM event_relations"
    " WHERE rel_type = 'm.thread' AND relates_to_id IN ({ids}) GROUP BY relates_to_id"
)
_BY_STREAM = "SELECT stream_ordering, event_id FROM event_relations WHERE stream_ordering IN ({ids})"
_REFERENCES = (
    "SELECT relates_to_id, event_id FROM event_relations"
    " WHERE rel_type = 'm.reference' AND relates_to_id IN ({ids}) ORDER BY stream_ordering"
)


#: Events known to have no relations (most events, read by every member's sync); then cleared.
MAX_KNOWN_BARE = 100_000


class RelationsStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db
        self._bare: set[str] = set()
        self._generation = 0
        #: Off in a worker process: relations are committed by another process.
        self.caching = True
        self._reading: dict[tuple[str, ...], list[Deferred[bool]]] = {}

    def invalidate(self, targets: Iterable[str]) -> None:
        """Relations to ``targets`` were just committed (called before the write is visible)."""
        self._generation += 1
        for target in targets:
            self._bare.discard(target)

    async def get_relations(self, room_id: str, event_id: str, rel_type: str | None,
                            event_type: str | None, from_stream: int, to_stream: int,
                            limit: int, newest_first: bool) -> list[str]:
        """IDs of events relating to event_id with from_stream < stream <= to_stream."""
        sql = (
            "SELECT event_id FROM event_relations WHERE room_id = ? AND relates_to_id = ?"
            " AND stream_ordering > ? AND stream_ordering <= ?"
        )
        args: list[Any] = [room_id, event_id, from_stream, to_stream]
        if rel_type is not None:
            sql += " AND rel_type = ?"
            args.append(rel_type)
        if event_type is not None:
            sql += " AND type = ?"
            args.append(event_type)
        sql += f" ORDER BY stream_ordering {'DESC' if newest_first else 'ASC'} LIMIT ?"
        args.append(limit)
        rows = await self.db.execute("get_relations", sql, *args)
        return [row[0] for row in rows]

    async def get_thread_roots(self, room_id: str, before_stream: int, limit: int,
                               participant: str | None) -> list[tuple[str, int]]:
        """(root event ID, latest reply stream) for threads, most recently active first."""
        participated = ""
        args: list[Any] = [room_id]
        if participant is not None:
            # A user takes part in a thread by replying to it or by sending its root.
            participated = (
                " AND (relates_to_id IN (SELECT relates_to_id FROM event_relations"
                " WHERE rel_type = 'm.thread' AND sender = ?)"
                " OR relates_to_id IN (SELECT event_id FROM events WHERE room_id = ? AND sender = ?))"
            )
            args.extend([participant, room_id, participant])
        sql = _THREAD_ROOTS.format(participated=participated)
        rows = await self.db.execute("get_thread_roots", sql, *args, before_stream, limit)
        return [(row[0], int(row[1])) for row in rows]


    async def get_bundles(self, event_ids: list[str], user_id: str | None
                          ) -> tuple[dict[str, ThreadSummary], dict[str, list[str]]]:
        """Thread summaries and reference lists for the given events (for unsigned.m.relations)."""
        event_ids = [event_id for event_id in event_ids if event_id not in self._bare]
        if not event_ids:
            return {}, {}
        key = tuple(event_ids)
        running = self._reading.get(key)
        if running is not None:
            # Every member's sync asks this about the same new events at once: wait for the
            # first reader; its answer is everyone's when no thread (the per-user part) is in it.
            waiter: Deferred[bool] = Deferred()
            running.append(waiter)
            if await waiter:
                return {}, {}
            return await self._read(event_ids, user_id)
        self._reading[key] = []
        bare = False
        try:
            threads, references = await self._read(event_ids, user_id)
            bare = not threads and not references
        finally:
            for waiter in self._reading.pop(key):
                waiter.callback(bare)
        return threads, references

    async def _read(self, event_ids: list[str], user_id: str | None
                    ) -> tuple[dict[str, ThreadSummary], dict[str, list[str]]]:
        generation = self._generation
        threads, references = await self.db.run_interaction("get_relation_bundles", self._read_bundles,
                                                            event_ids, user_id)
        if self.caching and generation == self._generation:
            if len(self._bare) > MAX_KNOWN_BARE:
                self._bare.clear()
            self._bare.update(e for e in event_ids if e not in threads and e not in references)
        return threads, references

    @staticmethod
    def _read_bundles(txn: Transaction, event_ids: list[str], user_id: str | None
                      ) -> tuple[dict[str, ThreadSummary], dict[str, list[str]]]:
        threads: dict[str, ThreadSummary] = {}
        references: dict[str, list[str]] = {}
        for start in range(0, len(event_ids), 200):
            chunk = event_ids[start:start + 200]
            marks = ",".join("?" * len(chunk))
            txn.execute(_THREAD_SUMMARY.format(ids=marks), [user_id or "", *chunk])
            rows = txn.fetchall()
            latest: dict[int, str] = {}
            if rows:
                streams = [int(row[2]) for row in rows]
                txn.execute(_BY_STREAM.format(ids=",".join("?" * len(streams))), streams)
                latest = {int(stream): event_id for stream, event_id in txn.fetchall()}
            for root, count, max_stream, mine in rows:
                if int(max_stream) in latest:
                    threads[root] = ThreadSummary(int(count), latest[int(max_stream)], bool(mine))
            txn.execute(_REFERENCES.format(ids=marks), chunk)
            for target, event_id in txn.fetchall():
                references.setdefault(target, []).append(event_id)
        return threads, references


def insert_relations_txn(txn: Transaction, rows: list[RelationRow]) -> None:
    txn.executemany(
        _INSERT,
        [(r.event_id, r.relates_to_id, r.rel_type, r.aggregation_key, r.room_id, r.type, r.sender,
          r.stream_ordering) for r in rows],
    )
