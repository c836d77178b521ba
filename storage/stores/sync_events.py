"""Sync-specific reads over the rooms area's tables (events, memberships).

The rooms area owns those tables; these are the questions only sync asks, kept
here so sync does not need to change their stores.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from storage.engine import Transaction
from storage.host import StorageHost

# The room's current state as of a position: the last change at or before it.
_STATE_GROUP_AT = (
    "SELECT state_group FROM room_stream_state WHERE room_id = ? AND stream_ordering <= ?"
    " ORDER BY stream_ordering DESC LIMIT 1"
)
_MEMBERSHIP_AT = (
    "SELECT membership, event_id, stream_ordering, sender FROM room_membership_changes"
    " WHERE user_id = ? AND room_id = ? AND stream_ordering <= ?"
    " ORDER BY stream_ordering DESC LIMIT 1"
)
_ROOMS_WITH_EVENTS = (
    "SELECT DISTINCT room_id FROM events WHERE stream_ordering > ? AND stream_ordering <= ?"
    " AND outlier = 0 AND rejected = 0 AND soft_failed = 0"
)
_STREAM_OF_EVENT = "SELECT stream_ordering, room_id FROM events WHERE event_id = ?"
@attrs.frozen
class MembershipAt:
    membership: str
    event_id: str
    stream_ordering: int
    sender: str | None = None


class SyncEventsStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def state_group_at(self, room_id: str, position: int) -> int | None:
        """The group of the room's current state as it was at ``position`` (not the state
        after the latest event: with forks, soft-failed and late events they differ)."""
        rows = await self.db.execute("sync_state_group_at", _STATE_GROUP_AT, room_id, position)
        return int(rows[0][0]) if rows else None

    async def memberships_at(self, user_id: str, room_ids: Iterable[str],
                             position: int) -> dict[str, MembershipAt]:
        """The user's membership in each room as of ``position`` (absent: none yet)."""
        room_ids = list(room_ids)
        if not room_ids:
            return {}

        def select(txn: Transaction) -> dict[str, MembershipAt]:
            found = {}
            for room_id in room_ids:
                txn.execute(_MEMBERSHIP_AT, (user_id, room_id, position))
                row = txn.fetchone()
                if row is not None:
                    found[room_id] = MembershipAt(row[0], row[1], int(row[2]), row[3])
            return found

        return await self.db.run_interaction("sync_memberships_at", select)

    async def rooms_with_events(self, since: int, upto: int) -> set[str]:
        rows = await self.db.execute("sync_rooms_with_events", _ROOMS_WITH_EVENTS, since, upto)
        return {row[0] for row in rows}

    async def event_position(self, event_id: str) -> tuple[int, str] | None:
        """(stream_ordering, room_id) of an event we hold."""
        rows = await self.db.execute("sync_event_position", _STREAM_OF_EVENT, event_id)
        return (int(rows[0][0]), rows[0][1]) if rows else None
