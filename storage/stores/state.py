"""State groups: the room state after each event, stored as deltas with snapshots.

A state event gets a new group holding only what it changed, pointing at the group
before it; a message event reuses its predecessor's group. Every SNAPSHOT_INTERVAL
deltas a full snapshot is written, so reading any group walks at most that many rows
sets, and storage grows with the number of state changes (plus periodic snapshots),
not with room size times event count.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from storage.cache_stats import cache_stats
from storage.engine import Transaction
from storage.host import StorageHost
from storage.sharded_stream import SharedSequence

StateKey = tuple[str, str]
StateMap = dict[StateKey, str]

#: Longest chain of deltas before a snapshot is taken.
SNAPSHOT_INTERVAL = 100
GROUP_CACHE_SIZE = 200

_CHAIN = (
    "WITH RECURSIVE chain (id, prev_group, n) AS ("
    " SELECT id, prev_group, 0 FROM state_groups WHERE id = ?"
    " UNION ALL SELECT g.id, g.prev_group, c.n + 1 FROM state_groups g JOIN chain c ON g.id = c.prev_group"
    ") SELECT id FROM chain ORDER BY n"
)
# The chains of several groups at once, each row tagged with the group it started from.
_CHAINS = (
    "WITH RECURSIVE chain (origin, id, prev_group, n) AS ("
    " SELECT id, id, prev_group, 0 FROM state_groups WHERE id IN ({ids})"
    " UNION ALL SELECT c.origin, g.id, g.prev_group, c.n + 1 FROM state_groups g"
    " JOIN chain c ON g.id = c.prev_group"
    ") SELECT origin, id FROM chain ORDER BY origin, n"
)
# Groups per _CHAINS query: their chains (each at most SNAPSHOT_INTERVAL long) become the
# IN list of the entries query, which must stay under SQLite's bound-parameter limit.
GROUPS_PER_QUERY = 20
_ENTRIES_IN = "SELECT state_group, type, state_key, event_id FROM state_group_entries WHERE state_group IN "
_INSERT_GROUP = "INSERT INTO state_groups (id, room_id, prev_group, chain_length) VALUES (?, ?, ?, ?)"
_INSERT_ENTRY = (
    "INSERT INTO state_group_entries (state_group, type, state_key, event_id) VALUES (?, ?, ?, ?)"
)
_MAX_GROUP = "SELECT MAX(id) FROM state_groups"
_CHAIN_LENGTH = "SELECT chain_length FROM state_groups WHERE id = ?"


class StateGroupStore:
    """Reads state groups (cached: groups change only when a partial-state room completes,
    which calls ``forget_all``) and allocates new group ids."""

    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db
        self._cache: OrderedDict[int, StateMap] = OrderedDict()
        self.cache_stats = cache_stats("state_group", self._cache)
        self._last_id: int | None = None
        #: Set when several persisters write events (homeserver/replication/persisters.py).
        self.shared_ids: SharedSequence | None = None

    async def allocate_ids(self, count: int) -> list[int]:
        """Fresh group ids (in memory, seeded from the table: one writer process)."""
        if self._last_id is None:
            rows = await self.db.execute("max_state_group", _MAX_GROUP)
            seeded = int(rows[0][0]) if rows and rows[0][0] is not None else 0
            if self._last_id is None:
                self._last_id = seeded
        if self.shared_ids is not None:  # several persisters: one sequence for all
            return await self.shared_ids.allocate(count, self._last_id)
        first = self._last_id + 1
        self._last_id += count
        return list(range(first, first + count))

    async def get_chain_length(self, group: int) -> int:
        rows = await self.db.execute("get_chain_length", _CHAIN_LENGTH, group)
        return int(rows[0][0]) if rows else 0

    async def get_state_ids(self, group: int) -> StateMap:
        """The whole state of a group as {(type, state_key): event_id}."""
        cached = self._cache.get(group)
        self.cache_stats.count(cached is not None)
        if cached is not None:
            self._cache.move_to_end(group)
            return dict(cached)
        state = await self.db.run_interaction("get_state_ids", read_group_txn, group)
        self.remember(group, state)
        return dict(state)

    async def get_state_ids_shared(self, group: int) -> Mapping[StateKey, str]:
        """get_state_ids without the copy, for readers that only look things up: a big room's
        every woken member reads the same group, and copying it each time cost more than the rest."""
        cached = self._cache.get(group)
        self.cache_stats.count(cached is not None)
        if cached is not None:
            self._cache.move_to_end(group)
            return cached
        state = await self.db.run_interaction("get_state_ids", read_group_txn, group)
        self.remember(group, state)
        return self._cache.get(group, state)

    async def get_state_ids_filtered(self, group: int, keys: Collection[StateKey] = (),
                                     types: Collection[str] = ()) -> StateMap:
        """Only the given (type, state_key) entries and every entry of the given types."""
        return (await self.get_state_ids_filtered_many([group], keys, types))[group]

    async def get_state_ids_filtered_many(self, groups: Iterable[int], keys: Collection[StateKey] = (),
                                          types: Collection[str] = ()) -> dict[int, StateMap]:
        """get_state_ids_filtered for several groups in one transaction.

        Each transaction is a pool thread hop and, on PostgreSQL, network round
        trips; history visibility asks this for every group of a timeline.
        """
        found: dict[int, StateMap] = {}
        missing: list[int] = []
        for group in dict.fromkeys(groups):
            cached = self._cache.get(group)
            self.cache_stats.count(cached is not None)
            if cached is not None:
                if types:
                    found[group] = {k: v for k, v in cached.items() if k in keys or k[0] in types}
                else:  # a few keys of a big room's state: look them up, don't scan it
                    found[group] = {k: cached[k] for k in keys if k in cached}
            else:
                missing.append(group)
        if missing:
            key_list, type_list = list(keys), list(types)

            def read(txn: Transaction) -> dict[int, StateMap]:
                read_groups: dict[int, StateMap] = {}
                for start in range(0, len(missing), GROUPS_PER_QUERY):
                    batch = missing[start:start + GROUPS_PER_QUERY]
                    read_groups.update(read_groups_filtered_txn(txn, batch, key_list, type_list))
                return read_groups

            found.update(await self.db.run_interaction("get_state_ids_filtered", read))
        return found

    def forget_all(self) -> None:
        """Groups were extended in place (a partial-state room completed): read them again."""
        self._cache.clear()

    def remember(self, group: int, state: Mapping[StateKey, str]) -> None:
        self._cache[group] = dict(state)
        if len(self._cache) > GROUP_CACHE_SIZE:
            self._cache.popitem(last=False)


def _chain(txn: Transaction, group: int) -> list[int]:
    """The group and its delta ancestors, newest first (one recursive query)."""
    txn.execute(_CHAIN, (group,))
    return [int(row[0]) for row in txn.fetchall()]


def _resolve(chain: list[int], rows: list[tuple[Any, ...]]) -> StateMap:
    """Entries from the newest group in the chain win."""
    rank = {link: position for position, link in enumerate(chain)}
    best: dict[StateKey, tuple[int, str]] = {}
    for link, event_type, state_key, event_id in rows:
        key = (event_type, state_key)
        position = rank[int(link)]
        if key not in best or position < best[key][0]:
            best[key] = (position, event_id)
    return {key: event_id for key, (_, event_id) in best.items()}


def read_group_txn(txn: Transaction, group: int) -> StateMap:
    chain = _chain(txn, group)
    if not chain:
        return {}
    txn.execute(_ENTRIES_IN + "(" + ",".join("?" * len(chain)) + ")", chain)
    return _resolve(chain, txn.fetchall())


def read_groups_filtered_txn(txn: Transaction, groups: list[int], keys: list[StateKey],
                             types: list[str]) -> dict[int, StateMap]:
    """Filtered state of several groups ({group: state}) in two statements, not two per group."""
    if not groups or not (keys or types):
        return {group: {} for group in groups}
    txn.execute(_CHAINS.format(ids=",".join("?" * len(groups))), groups)
    chains: dict[int, list[int]] = {group: [] for group in groups}
    for origin, link in txn.fetchall():
        chains[int(origin)].append(int(link))
    links = sorted({link for chain in chains.values() for link in chain})
    if not links:
        return {group: {} for group in groups}
    conditions = ["(type = ? AND state_key = ?)"] * len(keys) + ["type = ?"] * len(types)
    args: list[Any] = [*links]
    for event_type, state_key in keys:
        args.extend((event_type, state_key))
    args.extend(types)
    txn.execute(
        _ENTRIES_IN + "(" + ",".join("?" * len(links)) + ") AND (" + " OR ".join(conditions) + ")",
        args,
    )
    rows_by_link: dict[int, list[tuple[Any, ...]]] = {}
    for row in txn.fetchall():
        rows_by_link.setdefault(int(row[0]), []).append(row)
    return {group: _resolve(chain, [row for link in chain for row in rows_by_link.get(link, [])])
            for group, chain in chains.items()}


def write_group_txn(txn: Transaction, group: int, room_id: str, prev_group: int | None,
                    chain_length: int, entries: Mapping[StateKey, str]) -> None:
    """Insert one group: a delta on prev_group, or a snapshot when prev_group is None."""
    txn.execute(_INSERT_GROUP, (group, room_id, prev_group, chain_length))
    txn.executemany(
        _INSERT_ENTRY, [(group, key[0], key[1], event_id) for key, event_id in entries.items()]
    )
