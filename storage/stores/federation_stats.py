"""What the metrics show of the federation sender's persisted queues: per destination,
how much waits to be sent and how long its backoff is."""

from __future__ import annotations

import attrs

from storage.engine import Transaction
from storage.host import StorageHost

_PDUS = "SELECT destination, COUNT(*) FROM federation_pdu_queue GROUP BY destination"
_EDUS = "SELECT destination, COUNT(*) FROM federation_edu_queue GROUP BY destination"
_TO_DEVICE = "SELECT destination, COUNT(*) FROM device_federation_outbox GROUP BY destination"
_BACKOFF = "SELECT destination, retry_interval FROM federation_destinations WHERE retry_interval > 0"


@attrs.frozen
class QueueStats:
    pending_pdus: dict[str, int]
    #: EDUs and to-device messages together (each goes out as an EDU).
    pending_edus: dict[str, int]
    retry_interval_ms: dict[str, int]


class FederationStatsStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def queue_stats(self) -> QueueStats:
        def select(txn: Transaction) -> QueueStats:
            txn.execute(_PDUS)
            pdus = {row[0]: int(row[1]) for row in txn.fetchall()}
            edus: dict[str, int] = {}
            for sql in (_EDUS, _TO_DEVICE):
                txn.execute(sql)
                for destination, count in txn.fetchall():
                    edus[destination] = edus.get(destination, 0) + int(count)
            txn.execute(_BACKOFF)
            backoff = {row[0]: int(row[1]) for row in txn.fetchall()}
            return QueueStats(pdus, edus, backoff)

        return await self.db.run_interaction("federation_queue_stats", select)
