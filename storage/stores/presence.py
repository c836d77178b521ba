"""The ``presence`` table and its stream: each user's latest presence."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from storage.engine import Transaction
from storage.host import StorageHost
from storage.streams import Streams, StreamWriter

UPSERT_PRESENCE = (
    "INSERT INTO presence (user_id, stream_id, state, status_msg, last_active_ms, last_sync_ms)"
    " VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (user_id) DO UPDATE SET stream_id = excluded.stream_id, state = excluded.state,"
    " status_msg = excluded.status_msg, last_active_ms = excluded.last_active_ms,"
    " last_sync_ms = excluded.last_sync_ms"
)
SELECT_COLUMNS = "SELECT user_id, stream_id, state, status_msg, last_active_ms, last_sync_ms FROM presence"
SELECT_USER = SELECT_COLUMNS + " WHERE user_id = ?"
SELECT_CHANGES = SELECT_COLUMNS + " WHERE stream_id > ? AND stream_id <= ? ORDER BY stream_id"
SELECT_STALE_ONLINE = (
    SELECT_COLUMNS + " WHERE state IN ('online', 'unavailable') AND last_sync_ms < ?"
)


@attrs.frozen
class PresenceState:
    user_id: str
    stream_id: int
    state: str
    status_msg: str | None
    last_active_ms: int
    last_sync_ms: int


def _presence(row: tuple[Any, ...]) -> PresenceState:
    return PresenceState(row[0], int(row[1]), row[2], row[3], int(row[4]), int(row[5]))


class PresenceStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db
        self.streams: Streams = hs.get(Streams)

    async def stream_writer(self) -> StreamWriter:
        return await self.streams.writer("presence", "presence", "stream_id")

    def current_position(self) -> int:
        return self.streams.current_position("presence")

    async def set_presence(self, user_id: str, state: str, status_msg: str | None,
                           last_active_ms: int, last_sync_ms: int) -> PresenceState:
        writer = await self.stream_writer()
        async with writer.allocate() as (stream_id,):

            def upsert(txn: Transaction) -> None:
                txn.execute(UPSERT_PRESENCE, (user_id, stream_id, state, status_msg, last_active_ms,
                                              last_sync_ms))

            await self.db.run_interaction("set_presence", upsert)
        return PresenceState(user_id, stream_id, state, status_msg, last_active_ms, last_sync_ms)

    async def get_presence(self, user_id: str) -> PresenceState | None:
        rows = await self.db.execute("get_presence", SELECT_USER, user_id)
        return _presence(rows[0]) if rows else None

    async def get_presence_for_users(self, user_ids: Iterable[str]) -> list[PresenceState]:
        def select(txn: Transaction) -> list[PresenceState]:
            found = []
            for user_id in user_ids:
                txn.execute(SELECT_USER, (user_id,))
                row = txn.fetchone()
                if row is not None:
                    found.append(_presence(row))
            return found

        return await self.db.run_interaction("get_presence_for_users", select)

    async def get_changes(self, since: int, upto: int) -> list[PresenceState]:
        rows = await self.db.execute("get_presence_changes", SELECT_CHANGES, since, upto)
        return [_presence(row) for row in rows]

    async def get_stale_online(self, synced_before_ms: int) -> list[PresenceState]:
        rows = await self.db.execute("get_stale_online", SELECT_STALE_ONLINE, synced_before_ms)
        return [_presence(row) for row in rows]
