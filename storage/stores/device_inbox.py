"""The ``device_inbox`` table: to-device messages queued per device until acknowledged.

Messages are read by stream id (``id > since``) and deleted once the device's
next sync carries a token covering them (``id <= acknowledged``), as Dendrite
does; those never acknowledged are purged after the retention period.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from storage.engine import Transaction
from storage.host import StorageHost
from storage.stores.federation_queue import OutboxMessage, insert_to_device_outbox_txn
from storage.streams import Streams, StreamWriter

INSERT_TXN = (
    "INSERT INTO device_inbox_txns (sender_user_id, sender_device_id, txn_id, received_ms)"
    " VALUES (?, ?, ?, ?) ON CONFLICT (sender_user_id, sender_device_id, txn_id) DO NOTHING"
)
COUNT_INBOX = "SELECT COUNT(*) FROM device_inbox WHERE user_id = ? AND device_id = ?"
INSERT_MESSAGE = (
    "INSERT INTO device_inbox (user_id, device_id, stream_id, sender, event_type, content_json, received_ms)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
INSERT_HIGH_WATER = "INSERT INTO device_inbox_high_water (stream_id) VALUES (?) ON CONFLICT (stream_id) DO NOTHING"
SELECT_MESSAGES = (
    "SELECT stream_id, sender, event_type, content_json FROM device_inbox"
    " WHERE user_id = ? AND device_id = ? AND stream_id > ? AND stream_id <= ? ORDER BY stream_id LIMIT ?"
)
DELETE_ACKNOWLEDGED = "DELETE FROM device_inbox WHERE user_id = ? AND device_id = ? AND stream_id <= ?"
DELETE_DEVICE_INBOX = "DELETE FROM device_inbox WHERE user_id = ? AND device_id = ?"
PURGE_MESSAGES = "DELETE FROM device_inbox WHERE received_ms < ?"
PURGE_TXNS = "DELETE FROM device_inbox_txns WHERE received_ms < ?"
# The remote-bound queue keeps the local inboxes' retention: a server down for longer than it
# gets nothing it would have dropped anyway. (Unindexed by time: it is small, purged hourly.)
PURGE_OUTBOX = "DELETE FROM device_federation_outbox WHERE queued_ms < ?"
PRUNE_HIGH_WATER = (
    "DELETE FROM device_inbox_high_water"
    " WHERE stream_id < (SELECT MAX(stream_id) FROM device_inbox_high_water)"
)


@attrs.frozen
class ToDeviceMessage:
    user_id: str
    device_id: str
    sender: str
    event_type: str
    content: dict[str, Any]


@attrs.frozen
class InboxFull(Exception):
    """A recipient device already holds the maximum number of undelivered messages."""

    user_id: str
    device_id: str


class DeviceInboxStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db
        self.streams: Streams = hs.get(Streams)

    async def stream_writer(self) -> StreamWriter:
        """The to_device stream's writer (ids are device_inbox_high_water.stream_id)."""
        return await self.streams.writer("to_device", "device_inbox_high_water", "stream_id")

    async def add_messages(self, sender_user_id: str, sender_device_id: str, txn_id: str,
                           messages: list[ToDeviceMessage], stream_ids: list[int], now_ms: int,
                           inbox_limit: int, outbox: Sequence[OutboxMessage] = (),
                           outbox_ids: Sequence[int] = ()) -> bool:
        """Queue the messages under the given stream ids; False if this txn id was already used.

        ``outbox`` holds the request's EDUs for other servers (the federation sender's
        to-device outbox), written in the same transaction so the txn id covers them too.
        Raises InboxFull (and writes nothing) when a recipient's inbox is at the limit.
        """

        def store(txn: Transaction) -> bool:
            txn.execute(INSERT_TXN, (sender_user_id, sender_device_id, txn_id, now_ms))
            if txn.rowcount == 0:
                return False
            for user_id, device_id in dict.fromkeys((m.user_id, m.device_id) for m in messages):
                txn.execute(COUNT_INBOX, (user_id, device_id))
                row = txn.fetchone()
                if row is not None and int(row[0]) >= inbox_limit:
                    raise InboxFull(user_id, device_id)
            txn.executemany(INSERT_MESSAGE, [
                (m.user_id, m.device_id, stream_id, m.sender, m.event_type, json.dumps(m.content), now_ms)
                for m, stream_id in zip(messages, stream_ids, strict=True)
            ])
            insert_to_device_outbox_txn(txn, outbox, outbox_ids, now_ms)
            if stream_ids or outbox_ids:
                txn.execute(INSERT_HIGH_WATER, (max([*stream_ids, *outbox_ids]),))
            return True

        return await self.db.run_interaction("add_to_device_messages", store)

    async def get_messages(self, user_id: str, device_id: str, after: int, upto: int,
                           limit: int) -> list[tuple[int, dict[str, Any]]]:
        """(stream_id, event) pairs in stream order for ids in (after, upto]."""
        rows = await self.db.execute("get_to_device_messages", SELECT_MESSAGES,
                                     user_id, device_id, after, upto, limit)
        return [
            (int(row[0]), {"sender": row[1], "type": row[2], "content": json.loads(row[3])})
            for row in rows
        ]

    async def delete_acknowledged(self, user_id: str, device_id: str, upto: int) -> int:
        def delete(txn: Transaction) -> int:
            txn.execute(DELETE_ACKNOWLEDGED, (user_id, device_id, upto))
            return txn.rowcount

        return await self.db.run_interaction("delete_acknowledged_to_device", delete)

    async def purge_older_than(self, cutoff_ms: int) -> int:
        """Drop messages (local and remote-bound) and txn ids older than the cutoff."""

        def purge(txn: Transaction) -> int:
            txn.execute(PURGE_MESSAGES, (cutoff_ms,))
            removed = txn.rowcount
            txn.execute(PURGE_OUTBOX, (cutoff_ms,))
            removed += txn.rowcount
            txn.execute(PURGE_TXNS, (cutoff_ms,))
            txn.execute(PRUNE_HIGH_WATER)
            return removed

        return await self.db.run_interaction("purge_to_device", purge)

    @staticmethod
    def delete_device_inbox_txn(txn: Transaction, user_id: str, device_ids: Iterable[str]) -> None:
        txn.executemany(DELETE_DEVICE_INBOX, [(user_id, device_id) for device_id in device_ids])
