"""The ``receipts`` table and its stream: the latest receipt per (room, type, user, thread)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from storage.engine import Transaction
from storage.host import StorageHost
from storage.streams import Streams, StreamWriter

UPSERT_RECEIPT = (
    "INSERT INTO receipts (stream_id, room_id, receipt_type, user_id, thread_id, event_id, ts)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (room_id, receipt_type, user_id, thread_id)"
    " DO UPDATE SET stream_id = excluded.stream_id, event_id = excluded.event_id, ts = excluded.ts"
)
SELECT_COLUMNS = "SELECT stream_id, room_id, receipt_type, user_id, thread_id, event_id, ts FROM receipts"
SELECT_CHANGES = SELECT_COLUMNS + " WHERE stream_id > ? AND stream_id <= ? ORDER BY stream_id"
SELECT_ROOM = SELECT_COLUMNS + " WHERE room_id = ? AND stream_id <= ?"
SELECT_USER_RECEIPT = (
    "SELECT event_id FROM receipts WHERE room_id = ? AND user_id = ? AND receipt_type = ?"
    " AND thread_id = ''"
)
SELECT_USER_READ_RECEIPTS = (
    "SELECT receipt_type, event_id, thread_id FROM receipts"
    " WHERE room_id = ? AND user_id = ? AND receipt_type IN ('m.read', 'm.read.private')"
)


UNTHREADED = ""


@attrs.frozen
class Receipt:
    stream_id: int
    room_id: str
    receipt_type: str
    user_id: str
    thread_id: str  # "" for an unthreaded receipt
    event_id: str
    ts: int

    @property
    def is_private(self) -> bool:
        return self.receipt_type == "m.read.private"


def _receipt(row: tuple[Any, ...]) -> Receipt:
    return Receipt(int(row[0]), row[1], row[2], row[3], row[4], row[5], int(row[6]))


class ReceiptStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db
        self.streams: Streams = hs.get(Streams)

    async def stream_writer(self) -> StreamWriter:
        return await self.streams.writer("receipts", "receipts", "stream_id")

    def current_position(self) -> int:
        return self.streams.current_position("receipts")

    async def insert_receipt(self, room_id: str, receipt_type: str, user_id: str, thread_id: str,
                             event_id: str, ts: int) -> int:
        """Store the receipt; returns its stream id (current once this returns)."""
        writer = await self.stream_writer()
        async with writer.allocate() as (stream_id,):

            def upsert(txn: Transaction) -> None:
                txn.execute(UPSERT_RECEIPT, (stream_id, room_id, receipt_type, user_id, thread_id,
                                             event_id, ts))

            await self.db.run_interaction("insert_receipt", upsert)
        return stream_id

    async def get_changes(self, since: int, upto: int) -> list[Receipt]:
        rows = await self.db.execute("get_receipt_changes", SELECT_CHANGES, since, upto)
        return [_receipt(row) for row in rows]

    async def get_receipts_for_rooms(self, room_ids: Iterable[str], upto: int) -> list[Receipt]:
        def select(txn: Transaction) -> list[Receipt]:
            found: list[Receipt] = []
            for room_id in room_ids:
                txn.execute(SELECT_ROOM, (room_id, upto))
                found.extend(_receipt(row) for row in txn.fetchall())
            return found

        return await self.db.run_interaction("get_receipts_for_rooms", select)

    async def get_read_receipt_event_ids(self, room_id: str, user_id: str) -> list[str]:
        """The events the user's unthreaded m.read / m.read.private receipts point at."""
        rows = await self.db.execute("get_read_receipts", SELECT_USER_READ_RECEIPTS, room_id, user_id)
        return [row[1] for row in rows if row[2] == UNTHREADED]
