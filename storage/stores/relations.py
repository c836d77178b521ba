"""Event relations (m.relates_to): annotations, references, threads, edits."""

from __future__ import annotations

from typing import Any

import attrs

from storage.engine import Transaction

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


class RelationsStore:
    def __init__(self, hs: Any) -> None:
        self.db = hs.db

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


def insert_relations_txn(txn: Transaction, rows: list[RelationRow]) -> None:
    txn.executemany(
        _INSERT,
        [(r.event_id, r.relates_to_id, r.rel_type, r.aggregation_key, r.room_id, r.type, r.sender,
          r.stream_ordering) for r in rows],
    )
