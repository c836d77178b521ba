"""The room DAG's tables: edges, forward and backward extremities, rejections, and the
current state group at each events-stream position.

The event pipeline (homeserver/pipeline/) is the only writer; it decides every row and
hands them to storage/stores/events_persist.py, which calls the `*_txn` writers here
inside its one transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from storage.engine import Transaction
from storage.host import StorageHost

_EXTREMITIES = (
    "SELECT f.event_id, e.depth FROM event_forward_extremities f"
    " JOIN events e ON e.event_id = f.event_id WHERE f.room_id = ?"
)
_NEWEST_EXTREMITY = (
    "SELECT f.event_id FROM event_forward_extremities f JOIN events e ON e.event_id = f.event_id"
    " WHERE f.room_id = ? ORDER BY e.stream_ordering DESC LIMIT 1"
)
_DELETE_OTHER_FORWARD = "DELETE FROM event_forward_extremities WHERE room_id = ? AND event_id <> ?"
_BACKWARD = "SELECT event_id FROM event_backward_extremities WHERE room_id = ?"
_GROUP_AT = (
    "SELECT state_group FROM room_stream_state WHERE room_id = ? AND stream_ordering <= ?"
    " ORDER BY stream_ordering DESC LIMIT 1"
)
_LATEST_GROUP = (
    "SELECT state_group FROM room_stream_state WHERE room_id = ?"
    " ORDER BY stream_ordering DESC LIMIT 1"
)
# Which of these events a stored event of the DAG (not outlier, rejected or soft-failed) cites.
_CITED = (
    "SELECT DISTINCT g.prev_event_id FROM event_edges g JOIN events e ON e.event_id = g.event_id"
    " WHERE e.outlier = 0 AND e.rejected = 0 AND e.soft_failed = 0 AND g.prev_event_id IN "
)
_PREVS = "SELECT event_id, prev_event_id FROM event_edges WHERE event_id IN "
_AUTH_EDGES_OF = "SELECT event_id, auth_event_id FROM event_auth_edges WHERE event_id IN "
_REJECTION = "SELECT event_id, reason FROM rejections WHERE event_id IN "

_INSERT_EDGES = "INSERT INTO event_edges (event_id, prev_event_id, room_id) VALUES {rows} ON CONFLICT DO NOTHING"
_INSERT_AUTH_EDGES = (
    "INSERT INTO event_auth_edges (event_id, auth_event_id, room_id) VALUES {rows} ON CONFLICT DO NOTHING"
)
_DELETE_FORWARD = "DELETE FROM event_forward_extremities WHERE room_id = ? AND event_id IN "
_REPLACE_FORWARD = "UPDATE event_forward_extremities SET event_id = ? WHERE room_id = ? AND event_id = ?"
_INSERT_FORWARD = "INSERT INTO event_forward_extremities (room_id, event_id) VALUES {rows}"
#: Rows per multi-row INSERT (3 parameters each: under SQLite's bound-parameter limit).
ROWS_PER_INSERT = 300
_INSERT_BACKWARD = (
    "INSERT INTO event_backward_extremities (room_id, event_id) VALUES (?, ?) ON CONFLICT DO NOTHING"
)
_DELETE_BACKWARD = "DELETE FROM event_backward_extremities WHERE room_id = ? AND event_id = ?"
_INSERT_REJECTION = (
    "INSERT INTO rejections (event_id, room_id, reason, rejected_ts) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (event_id) DO NOTHING"
)
_INSERT_STREAM_STATE = (
    "INSERT INTO room_stream_state (room_id, stream_ordering, state_group) VALUES (?, ?, ?)"
    " ON CONFLICT (room_id, stream_ordering) DO UPDATE SET state_group = excluded.state_group"
)

#: IDs per IN (...) list, well under SQLite's bound-parameter limit.
CHUNK = 500
#: Most auth-chain rounds walked (each round follows one level of auth_events).
MAX_AUTH_CHAIN_ROUNDS = 1000


def _chunks(items: Collection[str]) -> Iterable[list[str]]:
    values = list(items)
    for start in range(0, len(values), CHUNK):
        yield values[start:start + CHUNK]


def _in_list(n: int) -> str:
    return "(" + ",".join("?" * n) + ")"


class RoomDagStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def get_forward_extremities(self, room_id: str) -> dict[str, int]:
        """{event_id: depth} of the room's forward extremities."""
        rows = await self.db.execute("get_forward_extremities", _EXTREMITIES, room_id)
        return {row[0]: int(row[1]) for row in rows}

    async def delete_forward_extremities_but_newest(self, room_id: str) -> int:
        """Keep only the newest forward extremity (highest stream ordering); how many went.

        For an admin (too many extremities make every new event costly); the caller runs
        it through ``EventPipeline.run_exclusive`` so no batch is in flight.
        """
        def delete(txn: Transaction) -> int:
            txn.execute(_NEWEST_EXTREMITY, (room_id,))
            row = txn.fetchone()
            if row is None:
                return 0
            txn.execute(_DELETE_OTHER_FORWARD, (room_id, row[0]))
            return max(txn.rowcount, 0)

        return await self.db.run_interaction("delete_forward_extremities_but_newest", delete)

    async def get_backward_extremities(self, room_id: str) -> set[str]:
        rows = await self.db.execute("get_backward_extremities", _BACKWARD, room_id)
        return {row[0] for row in rows}

    async def get_current_state_group(self, room_id: str) -> int | None:
        """The group holding the room's current state (None for a room with no state yet)."""
        rows = await self.db.execute("get_current_state_group", _LATEST_GROUP, room_id)
        return int(rows[0][0]) if rows else None

    async def state_group_at(self, room_id: str, position: int) -> int | None:
        """The group holding the room's current state as it was at events-stream ``position``."""
        rows = await self.db.execute("state_group_at", _GROUP_AT, room_id, position)
        return int(rows[0][0]) if rows else None

    async def cited_by_dag(self, event_ids: Collection[str]) -> set[str]:
        """Those of ``event_ids`` that a stored DAG event cites as a prev_event."""
        def select(txn: Transaction) -> set[str]:
            found: set[str] = set()
            for chunk in _chunks(event_ids):
                txn.execute(_CITED + _in_list(len(chunk)), chunk)
                found.update(row[0] for row in txn.fetchall())
            return found

        return await self.db.run_interaction("cited_by_dag", select) if event_ids else set()

    async def get_prev_event_ids(self, event_ids: Collection[str]) -> dict[str, list[str]]:
        def select(txn: Transaction) -> dict[str, list[str]]:
            found: dict[str, list[str]] = {}
            for chunk in _chunks(event_ids):
                txn.execute(_PREVS + _in_list(len(chunk)), chunk)
                for event_id, prev_id in txn.fetchall():
                    found.setdefault(event_id, []).append(prev_id)
            return found

        return await self.db.run_interaction("get_prev_event_ids", select) if event_ids else {}

    async def get_auth_chain_ids(self, event_ids: Collection[str]) -> set[str]:
        """Every event reachable from ``event_ids`` through auth_events (themselves excluded)."""
        return await self.db.run_interaction("get_auth_chain_ids", auth_chain_ids_txn, list(event_ids))

    async def get_rejection_reasons(self, event_ids: Collection[str]) -> dict[str, str]:
        def select(txn: Transaction) -> dict[str, str]:
            found: dict[str, str] = {}
            for chunk in _chunks(event_ids):
                txn.execute(_REJECTION + _in_list(len(chunk)), chunk)
                found.update((row[0], row[1]) for row in txn.fetchall())
            return found

        return await self.db.run_interaction("get_rejection_reasons", select) if event_ids else {}


def auth_chain_ids_txn(txn: Transaction, event_ids: list[str]) -> set[str]:
    seen: set[str] = set()
    frontier = set(event_ids)
    for _ in range(MAX_AUTH_CHAIN_ROUNDS):
        if not frontier:
            break
        found: set[str] = set()
        for chunk in _chunks(frontier):
            txn.execute(_AUTH_EDGES_OF + _in_list(len(chunk)), chunk)
            found.update(row[1] for row in txn.fetchall())
        frontier = found - seen
        seen |= found
    return seen


def _insert_rows(txn: Transaction, template: str, rows: list[tuple[str, ...]]) -> None:
    """One statement per few hundred rows: executemany costs a round trip per row on PostgreSQL."""
    for start in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[start:start + ROWS_PER_INSERT]
        placeholders = ",".join("(" + ",".join("?" * len(chunk[0])) + ")" for _ in chunk)
        txn.execute(template.format(rows=placeholders), [value for row in chunk for value in row])


def insert_edges_txn(txn: Transaction, room_id: str, edges: Iterable[tuple[str, str]]) -> None:
    _insert_rows(txn, _INSERT_EDGES, [(event_id, prev_id, room_id) for event_id, prev_id in edges])


def insert_auth_edges_txn(txn: Transaction, room_id: str, edges: Iterable[tuple[str, str]]) -> None:
    _insert_rows(txn, _INSERT_AUTH_EDGES, [(event_id, auth_id, room_id) for event_id, auth_id in edges])


def update_forward_extremities_txn(txn: Transaction, room_id: str, before: Collection[str],
                                   after: Collection[str]) -> None:
    """Turn the stored set ``before`` into ``after`` (one UPDATE for a linear step)."""
    removed = [event_id for event_id in before if event_id not in after]
    added = [event_id for event_id in after if event_id not in before]
    if len(removed) == 1 and len(added) == 1:
        txn.execute(_REPLACE_FORWARD, (added[0], room_id, removed[0]))
        return
    for chunk in _chunks(removed):
        txn.execute(_DELETE_FORWARD + _in_list(len(chunk)), [room_id, *chunk])
    _insert_rows(txn, _INSERT_FORWARD, [(room_id, event_id) for event_id in added])


def update_backward_extremities_txn(txn: Transaction, room_id: str, added: Iterable[str],
                                    removed: Iterable[str]) -> None:
    added, removed = list(added), list(removed)
    if not (added or removed):
        return
    txn.executemany(_DELETE_BACKWARD, [(room_id, event_id) for event_id in removed])
    txn.executemany(_INSERT_BACKWARD, [(room_id, event_id) for event_id in added])


def insert_rejections_txn(txn: Transaction, room_id: str, rejections: Iterable[tuple[str, str]],
                          now_ms: int) -> None:
    txn.executemany(_INSERT_REJECTION,
                    [(event_id, room_id, reason, now_ms) for event_id, reason in rejections])


def insert_stream_state_txn(txn: Transaction, room_id: str, rows: Iterable[tuple[int, int]]) -> None:
    """(stream_ordering, state_group) pairs: where the room's current state changed."""
    txn.executemany(_INSERT_STREAM_STATE, [(room_id, stream, group) for stream, group in rows])
