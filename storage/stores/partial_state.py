"""Rooms joined with partial state (MSC3706, ``send_join`` with ``omit_members``).

While a room is here, its state lacks most ``m.room.member`` events: the background resync
(federation/membership/partial_state.py) fetches them and ``fill_partial_state_txn`` puts
them into every state snapshot taken since the join, the current state and the member list,
in one transaction. The set of partial rooms is kept in memory (the pipeline asks for each
batch); one writer process, as for every room write.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import attrs

from storage.engine import Transaction
from storage.host import StorageHost

StateKey = tuple[str, str]

_ALL = "SELECT room_id, join_event_id, joined_via, servers FROM partial_state_rooms"
_INSERT = (
    "INSERT INTO partial_state_rooms (room_id, join_event_id, joined_via, servers) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (room_id) DO UPDATE SET join_event_id = excluded.join_event_id,"
    " joined_via = excluded.joined_via, servers = excluded.servers"
)
_DELETE = "DELETE FROM partial_state_rooms WHERE room_id = ?"
_COMPLETED = (
    "INSERT INTO partial_state_completions (room_id, stream_ordering) VALUES (?, ?)"
    " ON CONFLICT (room_id) DO UPDATE SET stream_ordering = excluded.stream_ordering"
)
_COMPLETIONS = "SELECT room_id, stream_ordering FROM partial_state_completions WHERE stream_ordering > ?"
# Snapshots (no prev_group) of the room from the join's on: every delta rests on one of them.
_SNAPSHOTS = "SELECT id FROM state_groups WHERE room_id = ? AND prev_group IS NULL AND id >= ?"
_GROUP_KEYS = "SELECT type, state_key FROM state_group_entries WHERE state_group = ?"
_ROOT = (
    "WITH RECURSIVE chain (id, prev_group) AS ("
    " SELECT id, prev_group FROM state_groups WHERE id = ?"
    " UNION ALL SELECT g.id, g.prev_group FROM state_groups g JOIN chain c ON g.id = c.prev_group"
    ") SELECT id FROM chain WHERE prev_group IS NULL"
)
_INSERT_ENTRY = (
    "INSERT INTO state_group_entries (state_group, type, state_key, event_id) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (state_group, type, state_key) DO NOTHING"
)
_INSERT_CURRENT = (
    "INSERT INTO current_state_events (room_id, type, state_key, event_id) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (room_id, type, state_key) DO NOTHING"
)
_INSERT_MEMBER = (
    "INSERT INTO room_members_current (room_id, user_id, membership, event_id, stream_ordering, forgotten)"
    " VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT (room_id, user_id) DO NOTHING"
)
_EVENT_GROUP = "SELECT state_group FROM events WHERE event_id = ?"


@attrs.frozen(slots=True)
class PartialStateRoom:
    room_id: str
    join_event_id: str
    #: The server whose send_join answered, then the others it named (``servers_in_room``).
    joined_via: str
    servers: tuple[str, ...]


@attrs.frozen(slots=True)
class FilledMember:
    """A member the resync found: its membership row for ``room_members_current``."""

    user_id: str
    membership: str
    event_id: str
    stream_ordering: int


class PartialStateStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db
        self._rooms: dict[str, PartialStateRoom] | None = None
        self._completions: dict[str, int] | None = None

    async def _load(self) -> dict[str, PartialStateRoom]:
        if self._rooms is None:
            rows = await self.db.execute("partial_state_rooms", _ALL)
            self._rooms = {row[0]: PartialStateRoom(row[0], row[1], row[2], tuple(json.loads(row[3])))
                           for row in rows}
        return self._rooms

    async def get_all(self) -> list[PartialStateRoom]:
        return list((await self._load()).values())

    async def get(self, room_id: str) -> PartialStateRoom | None:
        return (await self._load()).get(room_id)

    async def is_partial(self, room_id: str) -> bool:
        return room_id in await self._load()

    def maybe_partial(self, room_id: str) -> bool:
        """Without I/O: False only when the room is known not to be partial."""
        return self._rooms is None or room_id in self._rooms

    async def add(self, room: PartialStateRoom) -> None:
        """Before the join is submitted: a crash in between leaves a row the resync drops."""
        rooms = await self._load()
        await self.db.execute("add_partial_state_room", _INSERT, room.room_id, room.join_event_id,
                              room.joined_via, json.dumps(list(room.servers)))
        rooms[room.room_id] = room

    async def remove(self, room_id: str) -> None:
        rooms = await self._load()
        await self.db.execute("remove_partial_state_room", _DELETE, room_id)
        rooms.pop(room_id, None)

    def completed_in_memory(self, room_id: str, position: int) -> None:
        """After ``fill_partial_state_txn`` committed (it moved the row to the completions)."""
        if self._rooms is not None:
            self._rooms.pop(room_id, None)
        if self._completions is not None:
            self._completions[room_id] = position

    async def completions_since(self, position: int) -> dict[str, int]:
        """Rooms whose state became complete after ``position``: {room_id: position} (kept in
        memory: sync asks on every incremental request; the table holds a row per such room)."""
        if self._completions is None:
            rows = await self.db.execute("partial_state_completions", _COMPLETIONS, -1)
            self._completions = {row[0]: int(row[1]) for row in rows}
        return {room: at for room, at in self._completions.items() if at > position}


def fill_partial_state_txn(txn: Transaction, room_id: str, join_event_id: str, fill: Mapping[StateKey, str],
                           members: list[FilledMember], completed_at: int) -> None:
    """Add the resynced state the room lacked, where it lacks it.

    Every snapshot group since the join's (deltas inherit from their snapshot, and a key a
    later delta set still wins over the filled one), the current state and the member list
    get the entries whose key they do not hold; then the room is no longer partial.
    """
    txn.execute(_EVENT_GROUP, (join_event_id,))
    row = txn.fetchone()
    first = 0
    if row is not None and row[0] is not None:
        txn.execute(_ROOT, (int(row[0]),))
        root = txn.fetchone()
        first = int(root[0]) if root is not None else int(row[0])
    txn.execute(_SNAPSHOTS, (room_id, first))
    for (group,) in txn.fetchall():
        txn.execute(_GROUP_KEYS, (int(group),))
        held = {(r[0], r[1]) for r in txn.fetchall()}
        txn.executemany(_INSERT_ENTRY, [(int(group), key[0], key[1], event_id)
                                        for key, event_id in fill.items() if key not in held])
    txn.executemany(_INSERT_CURRENT, [(room_id, key[0], key[1], event_id) for key, event_id in fill.items()])
    txn.executemany(_INSERT_MEMBER, [(room_id, m.user_id, m.membership, m.event_id, m.stream_ordering)
                                     for m in members])
    txn.execute(_DELETE, (room_id,))
    txn.execute(_COMPLETED, (room_id, completed_at))
