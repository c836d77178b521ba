"""Inbound federation transactions: the (origin, txn_id) dedupe table and the raw PDUs staged
before they are worked on (so a crash mid-transaction loses nothing)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from storage.engine import Transaction
from storage.host import StorageHost

_GET_RESPONSE = "SELECT response_json FROM federation_inbound_transactions WHERE origin = ? AND txn_id = ?"
_INSERT_TXN = (
    "INSERT INTO federation_inbound_transactions (origin, txn_id, received_ts, response_json)"
    " VALUES (?, ?, ?, NULL) ON CONFLICT (origin, txn_id) DO NOTHING"
)
_INSERT_PDU = "INSERT INTO federation_inbound_pdus (origin, txn_id, idx, pdu_json) VALUES (?, ?, ?, ?)"
_FINISH = "UPDATE federation_inbound_transactions SET response_json = ? WHERE origin = ? AND txn_id = ?"
_DELETE_PDUS = "DELETE FROM federation_inbound_pdus WHERE origin = ? AND txn_id = ?"
_UNFINISHED = "SELECT origin, txn_id FROM federation_inbound_transactions WHERE response_json IS NULL"
_STAGED = "SELECT pdu_json FROM federation_inbound_pdus WHERE origin = ? AND txn_id = ? ORDER BY idx"
_PURGE_TXNS = "DELETE FROM federation_inbound_transactions WHERE received_ts < ? AND response_json IS NOT NULL"


class FederationInboundStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def get_response(self, origin: str, txn_id: str) -> tuple[bool, dict[str, Any] | None]:
        """(known, response): known with no response means it is staged but unfinished."""
        rows = await self.db.execute("get_inbound_txn", _GET_RESPONSE, origin, txn_id)
        if not rows:
            return False, None
        raw = rows[0][0]
        return True, (json.loads(raw) if raw is not None else None)

    async def stage(self, origin: str, txn_id: str, pdus: Sequence[Any], now_ms: int) -> bool:
        """Record the transaction and its raw PDUs; False if it was already recorded."""

        def write(txn: Transaction) -> bool:
            txn.execute(_INSERT_TXN, (origin, txn_id, now_ms))
            if txn.rowcount == 0:
                return False
            txn.executemany(_INSERT_PDU, [(origin, txn_id, i, json.dumps(pdu)) for i, pdu in enumerate(pdus)])
            return True

        return await self.db.run_interaction("stage_inbound_txn", write)

    async def finish(self, origin: str, txn_id: str, response: dict[str, Any]) -> None:
        def write(txn: Transaction) -> None:
            txn.execute(_FINISH, (json.dumps(response), origin, txn_id))
            txn.execute(_DELETE_PDUS, (origin, txn_id))

        await self.db.run_interaction("finish_inbound_txn", write)

    async def unfinished(self) -> list[tuple[str, str, list[Any]]]:
        """Every staged transaction without an answer: (origin, txn_id, raw PDUs in order)."""

        def read(txn: Transaction) -> list[tuple[str, str, list[Any]]]:
            txn.execute(_UNFINISHED)
            found = [(str(r[0]), str(r[1])) for r in txn.fetchall()]
            result = []
            for origin, txn_id in found:
                txn.execute(_STAGED, (origin, txn_id))
                result.append((origin, txn_id, [json.loads(r[0]) for r in txn.fetchall()]))
            return result

        return await self.db.run_interaction("unfinished_inbound_txns", read)

    async def purge_older_than(self, cutoff_ms: int) -> None:
        def write(txn: Transaction) -> None:
            txn.execute(_PURGE_TXNS, (cutoff_ms,))

        await self.db.run_interaction("purge_inbound_federation", write)
