"""Room membership: who is in which room now, and every change over time.

This is the shared contract other areas read (sync, e2ee device lists):
`get_rooms_for_user`, `get_users_in_room` and `get_membership_changes_for_user`.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from storage.engine import Transaction
from storage.host import StorageHost

_ROOMS_FOR_USER = "SELECT room_id FROM room_members_current WHERE user_id = ? AND membership = 'join'"
_USERS_IN_ROOM = "SELECT user_id FROM room_members_current WHERE room_id = ? AND membership = 'join'"
_JOINED_COUNT = "SELECT COUNT(*) FROM room_members_current WHERE room_id = ? AND membership = 'join'"
_MEMBERSHIP = (
    "SELECT membership, event_id, stream_ordering, forgotten FROM room_members_current"
    " WHERE room_id = ? AND user_id = ?"
)
_MEMBERSHIPS_IN_ROOM = "SELECT user_id, membership FROM room_members_current WHERE room_id = ?"
_MEMBERSHIPS_IN_ROOMS = (
    "SELECT room_id, user_id, membership FROM room_members_current WHERE room_id IN ({rooms})"
)
# Rooms per IN (...) list: well under SQLite's bound-parameter limit.
ROOMS_PER_QUERY = 500
# With who sent each membership: sync tells a kick (sent by someone else) from a leave.
_ROOMS_WITH_MEMBERSHIP = (
    "SELECT c.room_id, c.membership, c.event_id, c.stream_ordering, ch.sender"
    " FROM room_members_current c"
    " LEFT JOIN room_membership_changes ch ON ch.stream_ordering = c.stream_ordering"
    " WHERE c.user_id = ? AND c.forgotten = 0"
)
_CHANGES = (
    "SELECT stream_ordering, event_id, room_id, sender, membership FROM room_membership_changes"
    " WHERE user_id = ? AND stream_ordering > ? AND stream_ordering <= ? ORDER BY stream_ordering"
)
_FORGET = "UPDATE room_members_current SET forgotten = 1 WHERE room_id = ? AND user_id = ?"
_FORGET_IF_CURRENT = _FORGET + " AND event_id = ?"
_UPSERT = (
    "INSERT INTO room_members_current (room_id, user_id, membership, event_id, stream_ordering, forgotten)"
    " VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT (room_id, user_id) DO UPDATE SET"
    " membership = excluded.membership, event_id = excluded.event_id,"
    " stream_ordering = excluded.stream_ordering, forgotten = 0"
)
_DELETE_CURRENT = "DELETE FROM room_members_current WHERE room_id = ? AND user_id = ?"
_INSERT_CHANGE = (
    "INSERT INTO room_membership_changes (stream_ordering, event_id, room_id, user_id, sender, membership)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)


@attrs.frozen(slots=True)
class Membership:
    membership: str
    event_id: str
    stream_ordering: int
    forgotten: bool = False
    sender: str | None = None


@attrs.frozen(slots=True)
class MembershipChange:
    stream_ordering: int
    event_id: str
    room_id: str
    sender: str
    membership: str


@attrs.frozen(slots=True)
class MemberRow:
    """One membership write, produced by the persister for each m.room.member event."""

    room_id: str
    user_id: str
    sender: str
    membership: str
    event_id: str
    stream_ordering: int


#: Users whose rooms, and rooms whose joined members, stay in memory (then cleared).
MAX_CACHED_USERS = 100_000
MAX_CACHED_ROOMS = 20_000


class RoomMemberStore:
    """Reads of room_members_current; the per-user and per-room answers sync asks on every
    wake-up are kept in memory and dropped by ``invalidate`` when the one event writer
    commits a membership change (or a room is forgotten), before that write is visible."""

    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db
        self._rooms_of: dict[str, dict[str, Membership]] = {}
        self._joined: dict[str, frozenset[str]] = {}
        self._memberships: dict[str, dict[str, str]] = {}
        #: Bumped by every invalidation: a read that straddles one is not kept.
        self._generation = 0
        #: Off in a worker process: membership changes are committed by another process.
        self.caching = True

    def invalidate(self, room_id: str, user_ids: Iterable[str]) -> None:
        """Memberships of ``user_ids`` in ``room_id`` changed (called right after the commit)."""
        self._generation += 1
        self._joined.pop(room_id, None)
        self._memberships.pop(room_id, None)
        for user_id in user_ids:
            self._rooms_of.pop(user_id, None)

    async def get_rooms_for_user(self, user_id: str) -> set[str]:
        """Rooms the user is joined to now."""
        cached = self._rooms_of.get(user_id)
        if cached is not None:
            return {room for room, m in cached.items() if m.membership == "join"}
        rows = await self.db.execute("get_rooms_for_user", _ROOMS_FOR_USER, user_id)
        return {row[0] for row in rows}

    async def get_users_in_room(self, room_id: str) -> set[str]:
        """Users joined to the room now."""
        cached = self._joined.get(room_id)
        if cached is not None:
            return set(cached)
        generation = self._generation
        rows = await self.db.execute("get_users_in_room", _USERS_IN_ROOM, room_id)
        found = {row[0] for row in rows}
        if self.caching and generation == self._generation:
            if len(self._joined) >= MAX_CACHED_ROOMS:
                self._joined.clear()
            self._joined[room_id] = frozenset(found)
        return found

    async def get_joined_member_count(self, room_id: str) -> int:
        rows = await self.db.execute("get_joined_member_count", _JOINED_COUNT, room_id)
        return int(rows[0][0]) if rows else 0

    async def get_membership(self, room_id: str, user_id: str) -> Membership | None:
        """The user's current membership in the room (None if never a member)."""
        cached = self._rooms_of.get(user_id)
        if cached is not None and room_id in cached:
            return cached[room_id]  # a room in that map is not forgotten
        rows = await self.db.execute("get_membership", _MEMBERSHIP, room_id, user_id)
        if not rows:
            return None
        membership, event_id, stream, forgotten = rows[0]
        return Membership(membership, event_id, int(stream), bool(forgotten))

    async def get_memberships_in_room(self, room_id: str) -> dict[str, str]:
        """{user_id: membership} for everyone with any membership in the room."""
        rows = await self.db.execute("get_memberships_in_room", _MEMBERSHIPS_IN_ROOM, room_id)
        return {row[0]: row[1] for row in rows}

    async def get_memberships_in_rooms(self, room_ids: Iterable[str]) -> dict[str, dict[str, str]]:
        """get_memberships_in_room for many rooms in one transaction (initial sync asks for all).

        Kept in memory per room until a membership in it changes; the dicts returned are that
        cache's own: read them, never change them."""
        found: dict[str, dict[str, str]] = {}
        rooms = []
        for room_id in room_ids:
            cached = self._memberships.get(room_id)
            if cached is not None:
                found[room_id] = cached
            else:
                rooms.append(room_id)
        if rooms:
            generation = self._generation
            read = await self._read_memberships_in_rooms(rooms)
            if self.caching and generation == self._generation:
                if len(self._memberships) + len(read) > MAX_CACHED_ROOMS:
                    self._memberships.clear()
                self._memberships.update(read)
            found.update(read)
        return found

    async def _read_memberships_in_rooms(self, rooms: list[str]) -> dict[str, dict[str, str]]:

        def select(txn: Transaction) -> dict[str, dict[str, str]]:
            found: dict[str, dict[str, str]] = {room: {} for room in rooms}
            for start in range(0, len(rooms), ROOMS_PER_QUERY):
                batch = rooms[start:start + ROOMS_PER_QUERY]
                txn.execute(_MEMBERSHIPS_IN_ROOMS.format(rooms=",".join("?" * len(batch))), batch)
                for room_id, user_id, membership in txn.fetchall():
                    found[room_id][user_id] = membership
            return found

        if not rooms:
            return {}
        return await self.db.run_interaction("get_memberships_in_rooms", select)

    async def get_rooms_with_membership(self, user_id: str) -> dict[str, Membership]:
        """Every room the user has a (not forgotten) membership in, with that membership and its sender."""
        cached = self._rooms_of.get(user_id)
        if cached is not None:
            return dict(cached)
        generation = self._generation
        rows = await self.db.execute("get_rooms_with_membership", _ROOMS_WITH_MEMBERSHIP, user_id)
        found = {row[0]: Membership(row[1], row[2], int(row[3]), sender=row[4]) for row in rows}
        if self.caching and generation == self._generation:
            if len(self._rooms_of) >= MAX_CACHED_USERS:
                self._rooms_of.clear()
            self._rooms_of[user_id] = found
        return dict(found)

    async def get_membership_changes_for_user(self, user_id: str, from_stream: int,
                                              to_stream: int) -> list[MembershipChange]:
        """The user's membership events with from_stream < stream_ordering <= to_stream, oldest first."""
        rows = await self.db.execute(
            "get_membership_changes_for_user", _CHANGES, user_id, from_stream, to_stream
        )
        return [MembershipChange(int(r[0]), r[1], r[2], r[3], r[4]) for r in rows]

    async def forget(self, room_id: str, user_id: str, if_event_id: str | None = None) -> None:
        """Mark the room forgotten for the user; with ``if_event_id``, only while that
        membership event is still the current one (a rejoin since then wins)."""
        self.invalidate(room_id, [user_id])
        if if_event_id is None:
            await self.db.execute("forget_room", _FORGET, room_id, user_id)
        else:
            await self.db.execute("forget_room", _FORGET_IF_CURRENT, room_id, user_id, if_event_id)
        self.invalidate(room_id, [user_id])


def write_current_members_txn(txn: Transaction, room_id: str, rows: Iterable[MemberRow],
                              removed_user_ids: Iterable[str] = ()) -> None:
    """Bring room_members_current in line with the room's current state."""
    txn.executemany(_DELETE_CURRENT, [(room_id, user_id) for user_id in removed_user_ids])
    txn.executemany(
        _UPSERT, [(r.room_id, r.user_id, r.membership, r.event_id, r.stream_ordering) for r in rows]
    )


def insert_membership_changes_txn(txn: Transaction, rows: Iterable[MemberRow]) -> None:
    """One row per accepted membership event, for sync's "what changed for this user"."""
    rows = list(rows)
    txn.executemany(
        _INSERT_CHANGE,
        [(r.stream_ordering, r.event_id, r.room_id, r.user_id, r.sender, r.membership) for r in rows],
    )
