"""A queue of rooms to check, worked through one room at a time in the background.

Delayed events (state changed under a delayed state event) and self-destructing messages
(everyone has read) both react to stream advances by re-checking whole rooms; this keeps
their checks serial and lets a room marked during its own check be checked once more."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

from twisted.internet.defer import Deferred

logger = logging.getLogger(__name__)


class RoomCheckQueue:
    def __init__(self, check: Callable[[str], Awaitable[None]], failure_message: str) -> None:
        """``check(room_id)`` runs for each marked room; a failure is logged with
        ``failure_message % room_id`` and the room waits for its next mark."""
        self._check = check
        self._failure_message = failure_message
        self._dirty: set[str] = set()
        self._running = False

    def mark(self, rooms: Iterable[str]) -> None:
        """Queue rooms and start checking them in the background."""
        rooms = set(rooms)
        if not rooms:
            return
        self._dirty |= rooms
        if not self._running:
            Deferred.fromCoroutine(self._drain())

    async def check_now(self, rooms: Iterable[str]) -> None:
        """Queue rooms and check every queued room before returning (start-up); returns at
        once if a background run is already under way, which will take them."""
        self._dirty.update(rooms)
        await self._drain()

    async def _drain(self) -> None:
        if self._running:
            return
        self._running = True
        try:
            while self._dirty:
                room_id = self._dirty.pop()
                try:
                    await self._check(room_id)
                except Exception:  # checked again when the room is next marked
                    logger.exception(self._failure_message, room_id)
        finally:
            self._running = False
