"""The ``account_data`` table and its stream ("account_data").

Each write takes a stream id; sync reads what changed for a user between two
positions.  Global data is stored with ``room_id = ''``.  Notifications go out
only once the stream's current token covers the write, never past a gap.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import attrs

from storage.engine import Transaction
from storage.host import StorageHost
from storage.stores.storable import storable
from storage.streams import Streams, StreamWriter

STREAM_NAME = "account_data"
GLOBAL = ""

UPSERT_ACCOUNT_DATA = (
    "INSERT INTO account_data (user_id, room_id, data_type, content, stream_id) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (user_id, room_id, data_type)"
    " DO UPDATE SET content = excluded.content, stream_id = excluded.stream_id"
)
SELECT_ONE = "SELECT content FROM account_data WHERE user_id = ? AND room_id = ? AND data_type = ?"
SELECT_ALL = "SELECT room_id, data_type, content FROM account_data WHERE user_id = ?"
SELECT_TYPE_FOR_USERS = (
    "SELECT user_id, content FROM account_data WHERE room_id = '' AND data_type = ? AND user_id IN ({users})"
)
USERS_PER_QUERY = 500
SELECT_CHANGES = (
    "SELECT room_id, data_type, content FROM account_data"
    " WHERE user_id = ? AND stream_id > ? AND stream_id <= ?"
)


@attrs.frozen
class AccountData:
    """A user's account data: global by type, and per room by room id then type."""

    global_data: dict[str, Any]
    rooms: dict[str, dict[str, Any]]


def _collect(rows: list[tuple[Any, ...]]) -> AccountData:
    global_data: dict[str, Any] = {}
    rooms: dict[str, dict[str, Any]] = {}
    for room_id, data_type, content in rows:
        target = global_data if room_id == GLOBAL else rooms.setdefault(room_id, {})
        target[data_type] = json.loads(content)
    return AccountData(global_data, rooms)


class AccountDataStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db
        self.streams: Streams = hs.get(Streams)

    async def _stream(self) -> StreamWriter:
        return await self.streams.writer(STREAM_NAME, "account_data", "stream_id")

    async def get_current_position(self) -> int:
        """The account_data stream position every reader may safely read up to."""
        return (await self._stream()).get_current_token()

    async def put_account_data(self, user_id: str, room_id: str | None, data_type: str,
                               content: dict[str, Any]) -> int:
        """Store content (``room_id`` None for global data); returns its stream id."""
        stream = await self._stream()
        encoded = json.dumps(content, ensure_ascii=False, separators=(",", ":"))

        def upsert(txn: Transaction, stream_id: int) -> None:
            txn.execute(UPSERT_ACCOUNT_DATA, (user_id, room_id or GLOBAL, data_type, encoded, stream_id))

        async with stream.allocate() as (stream_id,):
            await self.db.run_interaction("put_account_data", upsert, stream_id)
        stream.announce(stream_id, users=[user_id])
        return stream_id

    async def get_account_data(self, user_id: str, room_id: str | None, data_type: str) -> Any | None:
        if not storable(user_id, room_id, data_type):
            return None
        rows = await self.db.execute("get_account_data", SELECT_ONE, user_id, room_id or GLOBAL, data_type)
        return json.loads(rows[0][0]) if rows else None

    async def get_global_account_data_for_users(self, user_ids: Iterable[str],
                                                data_type: str) -> dict[str, Any]:
        """One global type for many users at once (push rules of a room's members); absent users left out."""
        users = list(user_ids)

        def select(txn: Transaction) -> dict[str, Any]:
            found: dict[str, Any] = {}
            for start in range(0, len(users), USERS_PER_QUERY):
                batch = users[start:start + USERS_PER_QUERY]
                txn.execute(SELECT_TYPE_FOR_USERS.format(users=",".join("?" * len(batch))), (data_type, *batch))
                found.update((user_id, json.loads(content)) for user_id, content in txn.fetchall())
            return found

        if not users:
            return {}
        return await self.db.run_interaction("get_global_account_data_for_users", select)

    async def get_all_account_data(self, user_id: str) -> AccountData:
        """Everything (for an initial sync)."""
        return _collect(await self.db.execute("get_all_account_data", SELECT_ALL, user_id))

    async def get_account_data_changes(self, user_id: str, from_pos: int, to_pos: int) -> AccountData:
        """What was written for the user with from_pos < stream_id <= to_pos (latest value per type)."""
        if to_pos <= from_pos:
            return AccountData({}, {})
        return _collect(await self.db.execute("get_account_data_changes", SELECT_CHANGES,
                                              user_id, from_pos, to_pos))
