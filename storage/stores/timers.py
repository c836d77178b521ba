"""The ``timers`` table: persisted timers of every kind, read by the one timer service.

Owners write their timer rows inside their own transactions (``schedule_timer_txn``,
``cancel_timer_txn``), so a timer and the data it acts on always change together.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from storage.engine import Transaction
from storage.host import StorageHost

_UPSERT = (
    "INSERT INTO timers (kind, timer_key, due_ts) VALUES (?, ?, ?)"
    " ON CONFLICT (kind, timer_key) DO UPDATE SET due_ts = excluded.due_ts"
)
_DELETE = "DELETE FROM timers WHERE kind = ? AND timer_key = ?"
_POSTPONE = "UPDATE timers SET due_ts = ? WHERE kind = ? AND timer_key = ?"
_DELETE_UNCHANGED = "DELETE FROM timers WHERE kind = ? AND timer_key = ? AND due_ts = ?"


@attrs.frozen
class DueTimer:
    kind: str
    key: str
    due_ts: int


def schedule_timer_txn(txn: Transaction, kind: str, key: str, due_ts: int) -> None:
    """Set (or move) the timer ``(kind, key)`` to fire at ``due_ts`` (ms since the epoch)."""
    txn.execute(_UPSERT, (kind, key, due_ts))


def cancel_timer_txn(txn: Transaction, kind: str, key: str) -> None:
    txn.execute(_DELETE, (kind, key))


def _kinds_clause(kinds: Sequence[str]) -> str:
    return "kind IN (" + ", ".join("?" for _ in kinds) + ")"


class TimerStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def get_due(self, kinds: Sequence[str], now_ms: int, limit: int) -> list[DueTimer]:
        """Timers of these kinds due at or before ``now_ms``, earliest first."""
        if not kinds:
            return []
        sql = (f"SELECT kind, timer_key, due_ts FROM timers WHERE {_kinds_clause(kinds)} AND due_ts <= ?"
               " ORDER BY due_ts LIMIT ?")
        rows = await self.db.execute("get_due_timers", sql, *kinds, now_ms, limit)
        return [DueTimer(str(r[0]), str(r[1]), int(r[2])) for r in rows]

    async def next_due(self, kinds: Sequence[str]) -> int | None:
        """When the earliest timer of these kinds falls due, or None if there is none."""
        if not kinds:
            return None
        rows = await self.db.execute("next_due_timer",
                                     f"SELECT MIN(due_ts) FROM timers WHERE {_kinds_clause(kinds)}", *kinds)
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    async def postpone(self, kind: str, key: str, due_ts: int) -> None:
        """Move a timer whose owner failed to act on it (it is retried then)."""
        await self.db.execute("postpone_timer", _POSTPONE, due_ts, kind, key)

    async def delete_if_unchanged(self, kind: str, key: str, due_ts: int) -> None:
        """Remove a fired timer, unless its owner moved it meanwhile."""
        await self.db.execute("delete_fired_timer", _DELETE_UNCHANGED, kind, key, due_ts)
