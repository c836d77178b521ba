"""The federation sender's persisted queues: PDUs and EDUs per destination, the to-device
outbox, each destination's backoff, and how far local events have been queued.

A row is deleted only once a transaction carrying it was answered 200, so whatever a
restart interrupts is sent afterwards. federation/sender/ is the only reader.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from storage.engine import Transaction
from storage.host import StorageHost

INSERT_PDU = (
    "INSERT INTO federation_pdu_queue (destination, stream_ordering, event_id) VALUES (?, ?, ?)"
    " ON CONFLICT (destination, stream_ordering) DO NOTHING"
)
SELECT_PDUS = (
    "SELECT stream_ordering, event_id FROM federation_pdu_queue WHERE destination = ?"
    " ORDER BY stream_ordering LIMIT ?"
)
DELETE_PDU = "DELETE FROM federation_pdu_queue WHERE destination = ? AND stream_ordering = ?"
COUNT_PDUS = "SELECT COUNT(*) FROM federation_pdu_queue WHERE destination = ?"

DELETE_KEYED_EDU = "DELETE FROM federation_edu_queue WHERE destination = ? AND edu_type = ? AND edu_key = ?"
NEXT_EDU_ID = "UPDATE federation_edu_queue_ids SET last_id = last_id + 1 WHERE id = 1 RETURNING last_id"
INSERT_EDU = (
    "INSERT INTO federation_edu_queue (destination, queue_id, edu_type, edu_key, content_json)"
    " VALUES (?, ?, ?, ?, ?)"
)
SELECT_EDUS = (
    "SELECT queue_id, edu_type, content_json FROM federation_edu_queue WHERE destination = ?"
    " ORDER BY queue_id LIMIT ?"
)
DELETE_EDU = "DELETE FROM federation_edu_queue WHERE destination = ? AND queue_id = ?"

INSERT_OUTBOX = (
    "INSERT INTO device_federation_outbox (destination, stream_id, message_id, content_json, queued_ms)"
    " VALUES (?, ?, ?, ?, ?)"
)
SELECT_OUTBOX = (
    "SELECT stream_id, content_json FROM device_federation_outbox WHERE destination = ?"
    " ORDER BY stream_id LIMIT ?"
)
DELETE_OUTBOX = "DELETE FROM device_federation_outbox WHERE destination = ? AND stream_id = ?"

SELECT_PENDING_DESTINATIONS = (
    "SELECT DISTINCT destination FROM federation_pdu_queue"
    " UNION SELECT DISTINCT destination FROM federation_edu_queue"
    " UNION SELECT DISTINCT destination FROM device_federation_outbox"
)

SELECT_RETRY = (
    "SELECT retry_last_ts, retry_interval, failure_ts FROM federation_destinations WHERE destination = ?"
)
UPSERT_RETRY = (
    "INSERT INTO federation_destinations (destination, retry_last_ts, retry_interval, failure_ts)"
    " VALUES (?, ?, ?, ?) ON CONFLICT (destination) DO UPDATE SET retry_last_ts = excluded.retry_last_ts,"
    " retry_interval = excluded.retry_interval, failure_ts = excluded.failure_ts"
)
MARK_SUCCESS = (
    "INSERT INTO federation_destinations (destination, retry_last_ts, retry_interval, failure_ts,"
    " last_successful_ts) VALUES (?, 0, 0, NULL, ?) ON CONFLICT (destination) DO UPDATE SET"
    " retry_last_ts = 0, retry_interval = 0, failure_ts = NULL, last_successful_ts = excluded.last_successful_ts"
)

SELECT_POSITION = "SELECT stream_ordering FROM federation_sender_position WHERE id = 1"
UPSERT_POSITION = (
    "INSERT INTO federation_sender_position (id, stream_ordering) VALUES (1, ?)"
    " ON CONFLICT (id) DO UPDATE SET stream_ordering = excluded.stream_ordering"
    " WHERE federation_sender_position.stream_ordering < excluded.stream_ordering"
)
SELECT_LOCAL_EVENTS_AFTER = (
    "SELECT stream_ordering, event_id, room_id, sender FROM events"
    " WHERE stream_ordering > ? AND sender LIKE ? ESCAPE '!' AND outlier = 0 AND rejected = 0 AND soft_failed = 0"
    " ORDER BY stream_ordering LIMIT ?"
)


@attrs.frozen
class RetryTimings:
    """When the last attempt failed (ms), how long to wait after it, when the failures began."""

    retry_last_ts: int
    retry_interval: int
    failure_ts: int | None


@attrs.frozen
class QueuedPdu:
    destination: str
    stream_ordering: int
    event_id: str


@attrs.frozen
class OutboxMessage:
    """One m.direct_to_device EDU for one destination (content carries its message_id)."""

    destination: str
    message_id: str
    content: dict[str, Any]


def insert_to_device_outbox_txn(txn: Transaction, messages: Sequence[OutboxMessage],
                                stream_ids: Sequence[int], now_ms: int) -> None:
    """Written in the same transaction as the request's local to-device messages."""
    txn.executemany(INSERT_OUTBOX, [
        (m.destination, stream_id, m.message_id, json.dumps(m.content), now_ms)
        for m, stream_id in zip(messages, stream_ids, strict=True)
    ])


def _like_suffix(server_name: str) -> str:
    escaped = server_name.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%:{escaped}"


class FederationQueueStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    # -- PDUs ----------------------------------------------------------------------------

    async def queue_pdus(self, rows: Iterable[QueuedPdu], position: int | None = None) -> None:
        """Queue events for destinations; ``position`` (events stream) is then fully queued."""
        values = [(r.destination, r.stream_ordering, r.event_id) for r in rows]

        def write(txn: Transaction) -> None:
            if values:
                txn.executemany(INSERT_PDU, values)
            if position is not None:
                txn.execute(UPSERT_POSITION, (position,))

        await self.db.run_interaction("federation_queue_pdus", write)

    async def pending_pdus(self, destination: str, limit: int) -> list[tuple[int, str]]:
        rows = await self.db.execute("federation_pending_pdus", SELECT_PDUS, destination, limit)
        return [(int(row[0]), row[1]) for row in rows]

    async def count_pdus(self, destination: str) -> int:
        rows = await self.db.execute("federation_count_pdus", COUNT_PDUS, destination)
        return int(rows[0][0]) if rows else 0

    async def get_position(self) -> int | None:
        rows = await self.db.execute("federation_sender_position", SELECT_POSITION)
        return int(rows[0][0]) if rows else None

    async def local_events_after(self, position: int, server_name: str,
                                 limit: int) -> list[tuple[int, str, str, str]]:
        """(stream_ordering, event_id, room_id, sender) of timeline events whose sender may be ours."""
        rows = await self.db.execute("federation_local_events_after", SELECT_LOCAL_EVENTS_AFTER,
                                     position, _like_suffix(server_name), limit)
        return [(int(row[0]), row[1], row[2], row[3]) for row in rows]

    # -- EDUs ----------------------------------------------------------------------------

    async def queue_edu(self, destination: str, edu_type: str, content: dict[str, Any],
                        key: str | None = None) -> None:
        """Queue one EDU; a keyed one replaces the queued EDU of the same type and key.
        The id comes from the shared counter row, so any process may queue (docs/workers.md)."""
        raw = json.dumps(content)

        def write(txn: Transaction) -> None:
            txn.execute(NEXT_EDU_ID)
            queue_id = int(txn.fetchall()[0][0])
            if key is not None:
                txn.execute(DELETE_KEYED_EDU, (destination, edu_type, key))
            txn.execute(INSERT_EDU, (destination, queue_id, edu_type, key, raw))

        await self.db.run_interaction("federation_queue_edu", write)

    async def pending_edus(self, destination: str, limit: int) -> list[tuple[int, str, dict[str, Any]]]:
        rows = await self.db.execute("federation_pending_edus", SELECT_EDUS, destination, limit)
        return [(int(row[0]), row[1], json.loads(row[2])) for row in rows]

    async def pending_to_device(self, destination: str, limit: int) -> list[tuple[int, dict[str, Any]]]:
        rows = await self.db.execute("federation_pending_to_device", SELECT_OUTBOX, destination, limit)
        return [(int(row[0]), json.loads(row[1])) for row in rows]

    async def delete_sent(self, destination: str, pdus: Sequence[int], edus: Sequence[int],
                          to_device: Sequence[int]) -> None:
        """Drop what a transaction carried, once the destination accepted it."""

        def delete(txn: Transaction) -> None:
            for sql, ids in ((DELETE_PDU, pdus), (DELETE_EDU, edus), (DELETE_OUTBOX, to_device)):
                if ids:
                    txn.executemany(sql, [(destination, item) for item in ids])

        await self.db.run_interaction("federation_delete_sent", delete)

    async def destinations_with_pending(self) -> set[str]:
        rows = await self.db.execute("federation_pending_destinations", SELECT_PENDING_DESTINATIONS)
        return {row[0] for row in rows}

    # -- backoff -------------------------------------------------------------------------

    async def get_retry(self, destination: str) -> RetryTimings | None:
        rows = await self.db.execute("federation_get_retry", SELECT_RETRY, destination)
        if not rows:
            return None
        last, interval, failure = rows[0]
        return RetryTimings(int(last), int(interval), None if failure is None else int(failure))

    async def set_retry(self, destination: str, timings: RetryTimings) -> None:
        await self.db.execute("federation_set_retry", UPSERT_RETRY, destination, timings.retry_last_ts,
                              timings.retry_interval, timings.failure_ts)

    async def mark_success(self, destination: str, now_ms: int) -> None:
        await self.db.execute("federation_mark_success", MARK_SUCCESS, destination, now_ms)
