"""The ``delayed_events`` tables (MSC4140): events waiting to be sent, and their timers.

Each delayed event has a row in ``timers`` (kind ``DELAYED_EVENT_TIMER``, key = delay_id)
that is written and removed in the same transaction as the event's own row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import attrs

from storage.engine import Transaction
from storage.host import StorageHost
from storage.stores.timers import cancel_timer_txn, schedule_timer_txn

DELAYED_EVENT_TIMER = "delayed_event"

_COLUMNS = ("delay_id, user_id, device_id, room_id, event_type, state_key, content, delay_ms,"
            " running_since, scheduled_pos")
_INSERT = f"INSERT INTO delayed_events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_GET = f"SELECT {_COLUMNS} FROM delayed_events WHERE delay_id = ?"
_FOR_USER = f"SELECT {_COLUMNS} FROM delayed_events WHERE user_id = ? ORDER BY running_since + delay_ms"
_DUE_FOR_USER = "SELECT running_since + delay_ms FROM delayed_events WHERE user_id = ? ORDER BY 1"
_STATE_IN_ROOM = f"SELECT {_COLUMNS} FROM delayed_events WHERE room_id = ? AND state_key IS NOT NULL"
_ROOMS_WITH_STATE = (
    "SELECT room_id, MIN(scheduled_pos) FROM delayed_events WHERE state_key IS NOT NULL GROUP BY room_id"
)
_RESTART = "UPDATE delayed_events SET running_since = ? WHERE delay_id = ?"
_DELETE = "DELETE FROM delayed_events WHERE delay_id = ?"
_INSERT_TXN = (
    "INSERT INTO delayed_event_txns (txn_scope, txn_id, delay_id, inserted_ts) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (txn_scope, txn_id) DO NOTHING"
)
_GET_TXN = "SELECT delay_id FROM delayed_event_txns WHERE txn_scope = ? AND txn_id = ?"


@attrs.frozen
class DelayedEvent:
    delay_id: str
    user_id: str
    device_id: str | None
    room_id: str
    event_type: str
    state_key: str | None
    content: dict[str, Any]
    delay_ms: int
    #: When the delay last (re)started, ms since the epoch.
    running_since: int
    #: The "events" stream position when it was scheduled.
    scheduled_pos: int

    @property
    def due_ts(self) -> int:
        return self.running_since + self.delay_ms


@attrs.frozen
class TooManyDelayedEvents(Exception):
    """The user already has the most delayed events allowed; one falls due in ``retry_after_ms``."""

    retry_after_ms: int


def _row_to_delayed(row: tuple[Any, ...]) -> DelayedEvent:
    return DelayedEvent(str(row[0]), str(row[1]), row[2], str(row[3]), str(row[4]), row[5],
                        json.loads(row[6]), int(row[7]), int(row[8]), int(row[9]))


class DelayedEventStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def add(self, event: DelayedEvent, limit: int, now_ms: int,
                  txn_key: tuple[str, str] | None = None) -> str:
        """Store the delayed event and its timer; returns its delay_id.

        With ``txn_key`` (client transaction scope and ID) a retry returns the delay_id
        the first request got, and stores nothing. Raises TooManyDelayedEvents when the
        user already has ``limit`` scheduled.
        """

        def add_txn(txn: Transaction) -> str:
            if txn_key is not None:
                txn.execute(_INSERT_TXN, (*txn_key, event.delay_id, now_ms))
                if txn.rowcount == 0:
                    txn.execute(_GET_TXN, txn_key)
                    row = txn.fetchone()
                    assert row is not None
                    return str(row[0])
            txn.execute(_DUE_FOR_USER, (event.user_id,))
            dues = [int(r[0]) for r in txn.fetchall()]
            if len(dues) >= limit:
                # Room for one more once enough of the earliest ones have gone.
                raise TooManyDelayedEvents(max(0, dues[len(dues) - limit] - now_ms))
            txn.execute(_INSERT, (
                event.delay_id, event.user_id, event.device_id, event.room_id, event.event_type,
                event.state_key, json.dumps(event.content), event.delay_ms, event.running_since,
                event.scheduled_pos,
            ))
            schedule_timer_txn(txn, DELAYED_EVENT_TIMER, event.delay_id, event.due_ts)
            return event.delay_id

        return await self.db.run_interaction("add_delayed_event", add_txn)

    async def get(self, delay_id: str) -> DelayedEvent | None:
        rows = await self.db.execute("get_delayed_event", _GET, delay_id)
        return _row_to_delayed(rows[0]) if rows else None

    async def list_for_user(self, user_id: str) -> list[DelayedEvent]:
        rows = await self.db.execute("list_delayed_events", _FOR_USER, user_id)
        return [_row_to_delayed(row) for row in rows]

    async def state_events_in_room(self, room_id: str) -> list[DelayedEvent]:
        rows = await self.db.execute("delayed_state_in_room", _STATE_IN_ROOM, room_id)
        return [_row_to_delayed(row) for row in rows]

    async def rooms_with_state_events(self) -> dict[str, int]:
        """Rooms holding delayed state events, each with the earliest position one was scheduled at."""
        rows = await self.db.execute("rooms_with_delayed_state", _ROOMS_WITH_STATE)
        return {str(row[0]): int(row[1]) for row in rows}

    async def restart(self, delay_id: str, now_ms: int) -> int | None:
        """Start the delay again from now; the new due time, or None if there is no such event."""

        def restart_txn(txn: Transaction) -> int | None:
            txn.execute(_GET, (delay_id,))
            row = txn.fetchone()
            if row is None:
                return None
            event = _row_to_delayed(row)
            txn.execute(_RESTART, (now_ms, delay_id))
            due = now_ms + event.delay_ms
            schedule_timer_txn(txn, DELAYED_EVENT_TIMER, delay_id, due)
            return due

        return await self.db.run_interaction("restart_delayed_event", restart_txn)

    async def delete(self, delay_ids: Iterable[str]) -> list[str]:
        """Remove delayed events and their timers; the IDs that were there."""
        ids = list(delay_ids)

        def delete_txn(txn: Transaction) -> list[str]:
            removed = []
            for delay_id in ids:
                txn.execute(_DELETE, (delay_id,))
                if txn.rowcount:
                    removed.append(delay_id)
                cancel_timer_txn(txn, DELAYED_EVENT_TIMER, delay_id)
            return removed

        return await self.db.run_interaction("delete_delayed_events", delete_txn)
