"""Deleting every row a room left behind (the admin API's room deletion with ``purge``).

The tables are found in the schema rather than listed here, so a table another area adds
later is purged too: every table with a ``room_id`` column loses the room's rows, every
table with an ``event_id`` column loses the rows of the room's events, and state group
entries go with their groups. Events go in batches so the caller can report progress;
the room-wide rows go last, in one transaction. ``blocked_rooms`` is kept: a block
outlives the purge.
"""

from __future__ import annotations

import attrs

from storage.engine import Transaction
from storage.host import StorageHost
from storage.stores.self_destruct import SELF_DESTRUCT_TIMER

#: Tables whose rows about a room survive its purge.
KEPT = frozenset({"blocked_rooms", "events", "state_group_entries", "state_groups"})
_SQLITE_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
_SQLITE_COLUMNS = "SELECT name FROM pragma_table_info(?)"
_PG_COLUMNS = (
    "SELECT table_name, column_name FROM information_schema.columns"
    " WHERE table_schema = current_schema() AND column_name IN ('room_id', 'event_id')"
)
_COUNT_EVENTS = "SELECT COUNT(*) FROM events WHERE room_id = ?"
_EVENT_BATCH = "SELECT event_id FROM events WHERE room_id = ? ORDER BY stream_ordering LIMIT ?"
_STATE_ENTRIES = "DELETE FROM state_group_entries WHERE state_group IN (SELECT id FROM state_groups WHERE room_id = ?)"
_STATE_GROUPS = "DELETE FROM state_groups WHERE room_id = ?"


@attrs.frozen
class PurgeTables:
    """The tables to clear, by the column that names the room or its events."""

    by_room: tuple[str, ...]
    by_event: tuple[str, ...]


def find_tables_txn(txn: Transaction, engine_name: str) -> PurgeTables:
    columns: dict[str, set[str]] = {}
    if engine_name == "sqlite3":
        txn.execute(_SQLITE_TABLES)
        for (table,) in txn.fetchall():
            txn.execute(_SQLITE_COLUMNS, (table,))
            columns[table] = {row[0] for row in txn.fetchall()} & {"room_id", "event_id"}
    else:
        txn.execute(_PG_COLUMNS)
        for table, column in txn.fetchall():
            columns.setdefault(table, set()).add(column)
    by_room = tuple(sorted(t for t, cols in columns.items() if "room_id" in cols and t not in KEPT))
    by_event = tuple(sorted(t for t, cols in columns.items() if "event_id" in cols and t not in KEPT))
    return PurgeTables(by_room, by_event)


class RoomPurgeStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db
        self._tables: PurgeTables | None = None

    async def tables(self) -> PurgeTables:
        if self._tables is None:
            self._tables = await self.db.run_interaction("purge_find_tables", find_tables_txn, self.db.engine_name)
        return self._tables

    async def count_events(self, room_id: str) -> int:
        rows = await self.db.execute("purge_count_events", _COUNT_EVENTS, room_id)
        return int(rows[0][0])

    async def purge_event_batch(self, room_id: str, limit: int) -> list[str]:
        """Delete up to ``limit`` of the room's events and every row about them; their IDs."""
        tables = await self.tables()

        def purge(txn: Transaction) -> list[str]:
            txn.execute(_EVENT_BATCH, (room_id, limit))
            ids = [row[0] for row in txn.fetchall()]
            if not ids:
                return ids
            marks = ", ".join("?" for _ in ids)
            for table in tables.by_event:
                txn.execute(f"DELETE FROM {table} WHERE event_id IN ({marks})", ids)
            txn.execute(f"DELETE FROM events WHERE event_id IN ({marks})", ids)
            txn.execute(f"DELETE FROM timers WHERE kind = ? AND timer_key IN ({marks})", [SELF_DESTRUCT_TIMER, *ids])
            return ids

        return await self.db.run_interaction("purge_event_batch", purge)

    async def purge_room_rows(self, room_id: str) -> None:
        """The room-wide rows, once its events are gone (the ``rooms`` row among them)."""
        tables = await self.tables()

        def purge(txn: Transaction) -> None:
            txn.execute(_STATE_ENTRIES, (room_id,))
            txn.execute(_STATE_GROUPS, (room_id,))
            for table in tables.by_room:
                txn.execute(f"DELETE FROM {table} WHERE room_id = ?", (room_id,))

        await self.db.run_interaction("purge_room_rows", purge)
