"""The ``pushers`` and ``pusher_queue`` tables: who gets pushed where, and what is still to send.

A pusher is identified by ``(app_id, pushkey, user_id)`` and belongs to the device that set
it. Notifications for it are queued rows, deleted once its gateway took them, so a restart
resumes where delivery stopped. While a gateway fails, the pusher's row holds since when and
its current backoff, and a timer (kind ``PUSHER_TIMER``, key = pusher id) says when to retry;
both change in the same transaction.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from storage.engine import Transaction
from storage.host import StorageHost
from storage.stores.timers import cancel_timer_txn, schedule_timer_txn

PUSHER_TIMER = "pusher_retry"

_COLUMNS = ("id, user_id, device_id, access_token_id, kind, app_id, app_display_name, device_display_name,"
            " pushkey, pushkey_ts, lang, profile_tag, data, failing_since, backoff_ms, since_stream")
_SELECT = f"SELECT {_COLUMNS} FROM pushers"
_BY_IDENTITY = f"{_SELECT} WHERE app_id = ? AND pushkey = ? AND user_id = ?"
_BY_ID = f"{_SELECT} WHERE id = ?"
_BY_USER = f"{_SELECT} WHERE user_id = ? ORDER BY app_id, pushkey"
_INSERT = f"INSERT INTO pushers ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_UPDATE = (
    "UPDATE pushers SET device_id = ?, access_token_id = ?, kind = ?, app_display_name = ?,"
    " device_display_name = ?, pushkey_ts = ?, lang = ?, profile_tag = ?, data = ?,"
    " failing_since = NULL, backoff_ms = 0, since_stream = ? WHERE id = ?"
)
_OTHER_USERS = "SELECT id FROM pushers WHERE app_id = ? AND pushkey = ? AND user_id <> ?"
_FOR_DEVICE = "SELECT id FROM pushers WHERE user_id = ? AND device_id = ?"
_DELETE = "DELETE FROM pushers WHERE id = ?"
_DELETE_QUEUE = "DELETE FROM pusher_queue WHERE pusher_id = ?"
_ENQUEUE = (
    "INSERT INTO pusher_queue (pusher_id, stream_ordering, event_id, room_id, actions, queued_ts)"
    " SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM pushers WHERE id = ?)"
    " ON CONFLICT (pusher_id, stream_ordering) DO NOTHING"
)
_QUEUED = (
    "SELECT stream_ordering, event_id, room_id, actions, queued_ts FROM pusher_queue"
    " WHERE pusher_id = ? ORDER BY stream_ordering LIMIT ?"
)
_DEQUEUE = "DELETE FROM pusher_queue WHERE pusher_id = ? AND stream_ordering = ?"
_CLEAR_FAILING = "UPDATE pushers SET failing_since = NULL, backoff_ms = 0 WHERE id = ?"
_SET_FAILING = "UPDATE pushers SET failing_since = ?, backoff_ms = ? WHERE id = ?"
_WITH_QUEUE = f"{_SELECT} WHERE id IN (SELECT DISTINCT pusher_id FROM pusher_queue)"
_EXISTS = "SELECT 1 FROM pushers WHERE id = ?"
_USERS = "SELECT DISTINCT user_id FROM pushers"
_OF_USER = "SELECT id FROM pushers WHERE user_id = ?"


@attrs.frozen
class PusherSpec:
    """What a client asks for in ``POST /pushers/set`` (kind not null)."""

    user_id: str
    device_id: str | None
    access_token_id: int | None
    kind: str
    app_id: str
    app_display_name: str
    device_display_name: str
    pushkey: str
    lang: str
    profile_tag: str
    data: dict[str, Any]


@attrs.frozen
class Pusher:
    id: int
    user_id: str
    device_id: str | None
    access_token_id: int | None
    kind: str
    app_id: str
    app_display_name: str
    device_display_name: str
    pushkey: str
    #: When the pushkey was last set, ms since the epoch.
    pushkey_ts: int
    lang: str
    profile_tag: str
    data: dict[str, Any]
    failing_since: int | None
    backoff_ms: int
    #: The events stream position when it was set: earlier events are not pushed to it.
    since_stream: int

    def to_json(self) -> dict[str, Any]:
        """The pusher as ``GET /pushers`` lists it."""
        return {
            "pushkey": self.pushkey, "kind": self.kind, "app_id": self.app_id,
            "app_display_name": self.app_display_name, "device_display_name": self.device_display_name,
            "profile_tag": self.profile_tag, "lang": self.lang, "data": self.data,
        }


@attrs.frozen
class QueuedNotification:
    pusher_id: int
    stream_ordering: int
    event_id: str
    room_id: str
    actions: list[Any]
    queued_ts: int


def _pusher(row: Sequence[Any]) -> Pusher:
    return Pusher(int(row[0]), row[1], row[2], None if row[3] is None else int(row[3]), row[4], row[5], row[6],
                  row[7], row[8], int(row[9]), row[10], row[11], json.loads(row[12]),
                  None if row[13] is None else int(row[13]), int(row[14]), int(row[15]))


def _delete_txn(txn: Transaction, pusher_id: int) -> None:
    txn.execute(_DELETE_QUEUE, (pusher_id,))
    txn.execute(_DELETE, (pusher_id,))
    cancel_timer_txn(txn, PUSHER_TIMER, str(pusher_id))


class PusherStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db
        #: Users who may have a pusher (a superset: deletions leave them in until a restart).
        #: Most users have none, so a busy room's notifications need no query at all.
        self._users: set[str] | None = None

    async def users_with_pushers(self, user_ids: Iterable[str]) -> set[str]:
        """Those of ``user_ids`` who may have a pusher (one process writes pushers)."""
        if self._users is None:
            rows = await self.db.execute("users_with_pushers", _USERS)
            if self._users is None:
                self._users = {row[0] for row in rows}
        return self._users.intersection(user_ids)

    async def set_pusher(self, spec: PusherSpec, append: bool, now_ms: int, since_stream: int) -> Pusher:
        """Create or update the user's pusher with this app_id and pushkey; without ``append``,
        the same app_id and pushkey of every other user goes (the spec's rule)."""
        data = json.dumps(spec.data, ensure_ascii=False, separators=(",", ":"))

        def txn_fn(txn: Transaction) -> int:
            if not append:
                txn.execute(_OTHER_USERS, (spec.app_id, spec.pushkey, spec.user_id))
                for (other,) in txn.fetchall():
                    _delete_txn(txn, int(other))
            txn.execute(_BY_IDENTITY, (spec.app_id, spec.pushkey, spec.user_id))
            existing = txn.fetchone()
            if existing is not None:
                txn.execute(_UPDATE, (spec.device_id, spec.access_token_id, spec.kind, spec.app_display_name,
                                      spec.device_display_name, now_ms, spec.lang, spec.profile_tag, data,
                                      since_stream, existing[0]))
                cancel_timer_txn(txn, PUSHER_TIMER, str(existing[0]))
                return int(existing[0])
            pusher_id = secrets.randbits(62) + 1
            txn.execute(_INSERT, (pusher_id, spec.user_id, spec.device_id, spec.access_token_id, spec.kind,
                                  spec.app_id, spec.app_display_name, spec.device_display_name, spec.pushkey,
                                  now_ms, spec.lang, spec.profile_tag, data, None, 0, since_stream))
            return pusher_id

        pusher_id = await self.db.run_interaction("set_pusher", txn_fn)
        if self._users is not None:
            self._users.add(spec.user_id)
        pusher = await self.get_pusher(pusher_id)
        assert pusher is not None
        return pusher

    async def get_pusher(self, pusher_id: int) -> Pusher | None:
        rows = await self.db.execute("get_pusher", _BY_ID, pusher_id)
        return _pusher(rows[0]) if rows else None

    async def get_pushers_for_user(self, user_id: str) -> list[Pusher]:
        return [_pusher(row) for row in await self.db.execute("get_pushers_for_user", _BY_USER, user_id)]

    async def get_pushers_for_users(self, user_ids: Iterable[str]) -> list[Pusher]:
        users = sorted(set(user_ids))
        found: list[Pusher] = []
        for start in range(0, len(users), 500):
            chunk = users[start:start + 500]
            sql = f"{_SELECT} WHERE user_id IN ({', '.join('?' for _ in chunk)})"
            found.extend(_pusher(row) for row in await self.db.execute("get_pushers_for_users", sql, *chunk))
        return found

    async def get_pushers_with_queue(self) -> list[Pusher]:
        """Pushers that still have notifications to deliver (start-up resumes them)."""
        return [_pusher(row) for row in await self.db.execute("get_pushers_with_queue", _WITH_QUEUE)]

    async def delete_pusher(self, user_id: str, app_id: str, pushkey: str) -> int | None:
        """Delete the user's pusher with this identity; its id, or None if there was none."""
        def txn_fn(txn: Transaction) -> int | None:
            txn.execute(_BY_IDENTITY, (app_id, pushkey, user_id))
            row = txn.fetchone()
            if row is None:
                return None
            _delete_txn(txn, int(row[0]))
            return int(row[0])

        return await self.db.run_interaction("delete_pusher", txn_fn)

    async def delete_pusher_by_id(self, pusher_id: int) -> None:
        await self.db.run_interaction("delete_pusher_by_id", _delete_txn, pusher_id)

    async def delete_pushers_of_devices(self, user_id: str, device_ids: Iterable[str]) -> list[int]:
        """Delete every pusher the given devices set (they were deleted or logged out)."""
        ids = list(device_ids)

        def txn_fn(txn: Transaction) -> list[int]:
            deleted: list[int] = []
            for device_id in ids:
                txn.execute(_FOR_DEVICE, (user_id, device_id))
                deleted.extend(int(row[0]) for row in txn.fetchall())
            for pusher_id in deleted:
                _delete_txn(txn, pusher_id)
            return deleted

        return await self.db.run_interaction("delete_pushers_of_devices", txn_fn)

    async def delete_pushers_of_user(self, user_id: str) -> None:
        """Every pusher of the user (the account was deactivated)."""
        def txn_fn(txn: Transaction) -> None:
            txn.execute(_OF_USER, (user_id,))
            for (pusher_id,) in txn.fetchall():
                _delete_txn(txn, int(pusher_id))

        await self.db.run_interaction("delete_pushers_of_user", txn_fn)

    async def enqueue(self, items: Sequence[tuple[int, int, str, str, list[Any]]], now_ms: int) -> None:
        """Queue ``(pusher_id, stream_ordering, event_id, room_id, actions)`` for delivery; a
        notification already queued, or one for a pusher deleted meanwhile, is skipped."""
        if not items:
            return
        rows = [(pusher_id, ordering, event_id, room_id, json.dumps(actions, separators=(",", ":")), now_ms,
                 pusher_id) for pusher_id, ordering, event_id, room_id, actions in items]
        await self.db.run_interaction("enqueue_push", lambda txn: txn.executemany(_ENQUEUE, rows))

    async def get_queued(self, pusher_id: int, limit: int) -> list[QueuedNotification]:
        rows = await self.db.execute("get_queued_pushes", _QUEUED, pusher_id, limit)
        return [QueuedNotification(pusher_id, int(r[0]), r[1], r[2], json.loads(r[3]), int(r[4])) for r in rows]

    async def mark_sent(self, pusher_id: int, stream_ordering: int, was_failing: bool) -> bool:
        """The gateway took (or we gave up on) this notification: the position moves past it.
        False if the pusher was deleted meanwhile (send it nothing more)."""
        def txn_fn(txn: Transaction) -> bool:
            txn.execute(_DEQUEUE, (pusher_id, stream_ordering))
            if was_failing:
                txn.execute(_CLEAR_FAILING, (pusher_id,))
                cancel_timer_txn(txn, PUSHER_TIMER, str(pusher_id))
            txn.execute(_EXISTS, (pusher_id,))
            return txn.fetchone() is not None

        return await self.db.run_interaction("mark_push_sent", txn_fn)

    async def mark_failing(self, pusher_id: int, failing_since: int, backoff_ms: int, retry_at: int) -> None:
        """The gateway failed: remember since when, and retry at ``retry_at`` (a persisted timer)."""
        def txn_fn(txn: Transaction) -> None:
            txn.execute(_SET_FAILING, (failing_since, backoff_ms, pusher_id))
            if txn.rowcount:
                schedule_timer_txn(txn, PUSHER_TIMER, str(pusher_id), retry_at)

        await self.db.run_interaction("mark_pusher_failing", txn_fn)
