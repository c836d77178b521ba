"""State groups: the room state after each event, stored as deltas with snapshots.

A state event gets a new group holding only what it changed, pointing at the group
before it; a message event reuses its predecessor's group. Every SNAPSHOT_INTERVAL
deltas a full snapshot is written, so reading any group walks at most that many rows
sets, and storage grows with the number of state changes (plus periodic snapshots),
not with room size times event count.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Mapping
from typing import Any

from storage.engine import Transaction

StateKey = tuple[str, str]
StateMap = dict[StateKey, str]

#: Longest chain of deltas before a snapshot is taken.
SNAPSHOT_INTERVAL = 100
GROUP_CACHE_SIZE = 200

_GROUP = "SELECT prev_group FROM state_groups WHERE id = ?"
_ENTRIES = "SELECT type, state_key, event_id FROM state_group_entries WHERE state_group = ?"
_ENTRIES_FOR_TYPE = (
    "SELECT type, state_key, event_id FROM state_group_entries WHERE state_group = ? AND type = ?"
)
_ENTRY = (
    "SELECT event_id FROM state_group_entries WHERE state_group = ? AND type = ? AND state_key = ?"
)
_INSERT_GROUP = "INSERT INTO state_groups (id, room_id, prev_group, chain_length) VALUES (?, ?, ?, ?)"
_INSERT_ENTRY = (
    "INSERT INTO state_group_entries (state_group, type, state_key, event_id) VALUES (?, ?, ?, ?)"
)
_MAX_GROUP = "SELECT MAX(id) FROM state_groups"
_CHAIN_LENGTH = "SELECT chain_length FROM state_groups WHERE id = ?"


class StateGroupStore:
    """Reads state groups (cached: groups never change) and allocates new group ids."""

    def __init__(self, hs: Any) -> None:
        self.db = hs.db
        self._cache: OrderedDict[int, StateMap] = OrderedDict()
        self._last_id: int | None = None

    async def allocate_ids(self, count: int) -> list[int]:
        """Fresh group ids (in memory, seeded from the table: one writer process)."""
        if self._last_id is None:
            rows = await self.db.execute("max_state_group", _MAX_GROUP)
            seeded = int(rows[0][0]) if rows and rows[0][0] is not None else 0
            if self._last_id is None:
                self._last_id = seeded
        first = self._last_id + 1
        self._last_id += count
        return list(range(first, first + count))

    async def get_chain_length(self, group: int) -> int:
        rows = await self.db.execute("get_chain_length", _CHAIN_LENGTH, group)
        return int(rows[0][0]) if rows else 0

    async def get_state_ids(self, group: int) -> StateMap:
        """The whole state of a group as {(type, state_key): event_id}."""
        cached = self._cache.get(group)
        if cached is not None:
            self._cache.move_to_end(group)
            return dict(cached)
        state = await self.db.run_interaction("get_state_ids", read_group_txn, group)
        self.remember(group, state)
        return dict(state)

    async def get_state_ids_filtered(self, group: int, keys: Collection[StateKey] = (),
                                     types: Collection[str] = ()) -> StateMap:
        """Only the given (type, state_key) entries and every entry of the given types."""
        cached = self._cache.get(group)
        if cached is not None:
            return {k: v for k, v in cached.items() if k in keys or k[0] in types}
        return await self.db.run_interaction(
            "get_state_ids_filtered", read_group_filtered_txn, group, list(keys), list(types)
        )

    def remember(self, group: int, state: Mapping[StateKey, str]) -> None:
        self._cache[group] = dict(state)
        if len(self._cache) > GROUP_CACHE_SIZE:
            self._cache.popitem(last=False)


def _chain(txn: Transaction, group: int) -> list[int]:
    chain = []
    current: int | None = group
    while current is not None:
        chain.append(current)
        txn.execute(_GROUP, (current,))
        row = txn.fetchone()
        current = None if row is None or row[0] is None else int(row[0])
    return chain


def read_group_txn(txn: Transaction, group: int) -> StateMap:
    state: StateMap = {}
    for link in _chain(txn, group):
        txn.execute(_ENTRIES, (link,))
        for event_type, state_key, event_id in txn.fetchall():
            state.setdefault((event_type, state_key), event_id)
    return state


def read_group_filtered_txn(txn: Transaction, group: int, keys: list[StateKey],
                            types: list[str]) -> StateMap:
    state: StateMap = {}
    pending = set(keys)
    for link in _chain(txn, group):
        for event_type in types:
            txn.execute(_ENTRIES_FOR_TYPE, (link, event_type))
            for row_type, state_key, event_id in txn.fetchall():
                state.setdefault((row_type, state_key), event_id)
        for key in list(pending):
            txn.execute(_ENTRY, (link, key[0], key[1]))
            row = txn.fetchone()
            if row is not None:
                state[key] = row[0]
                pending.discard(key)
    return state


def write_group_txn(txn: Transaction, group: int, room_id: str, prev_group: int | None,
                    chain_length: int, entries: Mapping[StateKey, str]) -> None:
    """Insert one group: a delta on prev_group, or a snapshot when prev_group is None."""
    txn.execute(_INSERT_GROUP, (group, room_id, prev_group, chain_length))
    txn.executemany(
        _INSERT_ENTRY, [(group, key[0], key[1], event_id) for key, event_id in entries.items()]
    )
