"""Abuse reports (``content_reports``): events, rooms and users reported by clients, read by admins."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

import attrs

from storage.engine import Transaction
from storage.host import StorageHost
from storage.stores.storable import storable

_COLUMNS = "id, kind, received_ts, user_id, room_id, event_id, event_sender, target_user_id, reason, score"
_INSERT = f"INSERT INTO content_reports ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_SELECT_ONE = f"SELECT {_COLUMNS} FROM content_reports WHERE id = ? AND kind = ?"
_DELETE = "DELETE FROM content_reports WHERE id = ? AND kind = ?"
#: JavaScript tools read ids as doubles: keep them exact there.
MAX_ID = 2**53 - 1


@attrs.frozen
class Report:
    id: int
    kind: str
    received_ts: int
    user_id: str
    room_id: str | None
    event_id: str | None
    event_sender: str | None
    target_user_id: str | None
    reason: str | None
    score: int | None


@attrs.frozen
class ReportQuery:
    """Which reports an admin lists: ``from`` offset, newest first unless ``backwards`` is False."""

    kind: str
    offset: int = 0
    limit: int = 100
    backwards: bool = True
    room_id: str | None = None
    user_id: str | None = None
    event_sender: str | None = None


def _report(row: Sequence[Any]) -> Report:
    return Report(int(row[0]), row[1], int(row[2]), row[3], row[4], row[5], row[6], row[7], row[8],
                  None if row[9] is None else int(row[9]))


class ReportStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def add_report(self, kind: str, received_ts: int, user_id: str, *, room_id: str | None = None,
                         event_id: str | None = None, event_sender: str | None = None,
                         target_user_id: str | None = None, reason: str | None = None,
                         score: int | None = None) -> int:
        def insert(txn: Transaction) -> int:
            report_id = secrets.randbelow(MAX_ID) + 1
            txn.execute(_INSERT, (report_id, kind, received_ts, user_id, room_id, event_id, event_sender,
                                  target_user_id, reason, score))
            return report_id

        return await self.db.run_interaction("add_report", insert)

    async def get_report(self, kind: str, report_id: int) -> Report | None:
        rows = await self.db.execute("get_report", _SELECT_ONE, report_id, kind)
        return _report(rows[0]) if rows else None

    async def delete_report(self, kind: str, report_id: int) -> bool:
        def delete(txn: Transaction) -> bool:
            txn.execute(_DELETE, (report_id, kind))
            return txn.rowcount > 0

        return await self.db.run_interaction("delete_report", delete)

    async def list_reports(self, query: ReportQuery) -> tuple[list[Report], int]:
        """One page of reports and how many match in all."""
        clauses, args = ["kind = ?"], [query.kind]
        for column, value in (("room_id", query.room_id), ("user_id", query.user_id),
                              ("event_sender", query.event_sender)):
            if value is not None:
                if not storable(value):
                    return [], 0
                clauses.append(f"{column} = ?")
                args.append(value)
        where = " AND ".join(clauses)
        order = "DESC" if query.backwards else "ASC"

        def select(txn: Transaction) -> tuple[list[Report], int]:
            txn.execute(f"SELECT COUNT(*) FROM content_reports WHERE {where}", args)
            total = int(txn.fetchall()[0][0])
            txn.execute(f"SELECT {_COLUMNS} FROM content_reports WHERE {where}"
                        f" ORDER BY received_ts {order}, id {order} LIMIT ? OFFSET ?",
                        [*args, query.limit, query.offset])
            return [_report(row) for row in txn.fetchall()], total

        return await self.db.run_interaction("list_reports", select)
