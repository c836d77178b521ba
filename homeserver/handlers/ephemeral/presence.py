"""Presence: set and read a user's status, and keep "online" honest cheaply.

Nothing runs per user per second.  ``last_active_ago`` and
``currently_active`` are computed when an event is formatted; a user who
stops syncing is turned offline by one coarse sweep a minute.  With
``presence.enabled: false`` the endpoints still answer but no presence is
announced or sent down sync.  Presence changes count against
``rc_presence.per_user``: a PUT past it is a 429, a sync past it just leaves
presence as it was (as in Synapse).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall

from homeserver.errors import forbidden, invalid_param
from homeserver.handlers.ratelimit import RateLimiters
from homeserver.handlers.rooms.members import users_sharing_a_room
from homeserver.server import Server
from storage.stores.presence import PresenceState, PresenceStore

logger = logging.getLogger(__name__)

STATES = ("online", "unavailable", "offline")
ACTIVE_WINDOW_MS = 60_000  # "currently_active" if active this recently
REFRESH_AFTER_MS = 60_000  # a syncing user's row is rewritten at most this often
OFFLINE_AFTER_MS = 180_000  # no sync for this long and no open sync: offline
SWEEP_INTERVAL_S = 60.0
MAX_STATUS_MSG = 2048


def now_ms() -> int:
    return int(time.time() * 1000)


def presence_event(state: PresenceState, now: int) -> dict[str, Any]:
    content: dict[str, Any] = {"presence": state.state,
                               "last_active_ago": max(0, now - state.last_active_ms)}
    if state.state == "online":
        content["currently_active"] = now - state.last_active_ms < ACTIVE_WINDOW_MS
    if state.status_msg is not None:
        content["status_msg"] = state.status_msg
    return {"type": "m.presence", "sender": state.user_id, "content": content}


class PresenceHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.enabled: bool = hs.config.presence.enabled
        self.store: PresenceStore = hs.get(PresenceStore)
        self.limiter = hs.get(RateLimiters).presence
        self._syncing: dict[str, int] = {}  # user -> open syncs/WebSockets
        self._sweep: LoopingCall | None = None

    async def current_position(self) -> int:
        return (await self.store.stream_writer()).get_current_token()

    async def set_status(self, requester_user: str, user_id: str, state: str,
                         status_msg: str | None) -> None:
        if requester_user != user_id:
            raise forbidden("You cannot set the presence of another user")
        if state not in STATES:
            raise invalid_param(f"presence must be one of {', '.join(STATES)}")
        if status_msg is not None and len(status_msg) > MAX_STATUS_MSG:
            raise invalid_param("status_msg is too long")
        self.limiter.ratelimit(user_id)
        now = now_ms()
        previous = await self.store.get_presence(user_id)
        last_active = now if state == "online" else (previous.last_active_ms if previous else now)
        last_sync = previous.last_sync_ms if previous else now
        await self._write(user_id, state, status_msg, last_active, last_sync)

    async def get_status(self, requester_user: str, user_id: str) -> dict[str, Any]:
        if requester_user != user_id and user_id not in await users_sharing_a_room(self.hs, requester_user):
            raise forbidden("You do not share a room with this user")
        found = await self.store.get_presence(user_id)
        if found is None:
            return {"presence": "offline"}
        return presence_event(found, now_ms())["content"]

    async def user_syncing(self, user_id: str, set_presence: str | None) -> None:
        """A /sync or WebSocket began: mark online unless asked otherwise, at bounded cost.

        Not in a worker: presence is written by its writer (docs/workers.md)."""
        if not self.enabled or not self.store.streams.writes_here("presence"):
            return
        self._start_sweep()
        self._syncing[user_id] = self._syncing.get(user_id, 0) + 1
        state = set_presence or "online"
        if state not in STATES or state == "offline":
            return
        now = now_ms()
        found = await self.store.get_presence(user_id)
        if found is not None and found.state == state and now - found.last_sync_ms < REFRESH_AFTER_MS:
            return
        if self.limiter.retry_after(user_id) is not None:
            return
        status_msg = found.status_msg if found else None
        last_active = now if state == "online" else (found.last_active_ms if found else now)
        await self._write(user_id, state, status_msg, last_active, now)

    def user_stopped_syncing(self, user_id: str) -> None:
        if user_id not in self._syncing:
            return
        self._syncing[user_id] -= 1
        if self._syncing[user_id] <= 0:
            del self._syncing[user_id]

    async def _write(self, user_id: str, state: str, status_msg: str | None, last_active: int,
                     last_sync: int) -> None:
        written = await self.store.set_presence(user_id, state, status_msg, last_active, last_sync)
        if self.enabled:
            audience = await users_sharing_a_room(self.hs, user_id)
            (await self.store.stream_writer()).announce(written.stream_id, users=audience)

    def _start_sweep(self) -> None:
        if self._sweep is None:
            self._sweep = LoopingCall(self._sweep_once)
            self._sweep.clock = self.hs.reactor
            self._sweep.start(SWEEP_INTERVAL_S, now=False)

    async def _sweep_once_async(self) -> None:
        """Turn offline whoever stopped syncing; a failure is logged and the next sweep retries."""
        try:
            now = now_ms()
            for state in await self.store.get_stale_online(now - OFFLINE_AFTER_MS):
                if state.user_id not in self._syncing:
                    await self._write(state.user_id, "offline", state.status_msg,
                                      state.last_active_ms, state.last_sync_ms)
        except Exception:
            logger.exception("presence sweep failed")

    def _sweep_once(self) -> Deferred[None]:
        return Deferred.fromCoroutine(self._sweep_once_async())
