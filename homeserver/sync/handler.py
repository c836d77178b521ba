"""Long-poll /sync: build once, and if nothing changed park on the notifier until
something concerning the user does, or the timeout passes.  No polling loop:
the only wake-ups are notifier advances for the user's rooms or the user."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError, Deferred

from homeserver.handlers.ephemeral.presence import PresenceHandler
from homeserver.handlers.rooms.members import joined_rooms
from homeserver.notifier import Notifier, StreamAdvance
from homeserver.server import Server
from homeserver.sync.builder import SyncBuilder, has_changes
from homeserver.sync.provider import SyncRequest

MAX_TIMEOUT_MS = 300_000


def discard(waiter: Deferred[StreamAdvance | None] | None) -> None:
    """Stop waiting, without leaving an unhandled CancelledError behind."""
    if waiter is not None and not waiter.called:
        waiter.addErrback(lambda failure: failure.trap(CancelledError))
        waiter.cancel()


class SyncHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.reactor = hs.reactor
        self.builder: SyncBuilder = hs.get(SyncBuilder)
        self.notifier: Notifier = hs.get(Notifier)
        self.presence: PresenceHandler = hs.get(PresenceHandler)

    async def sync(self, request: SyncRequest, timeout_ms: int,
                   set_presence: str | None = None, encoded: bool = False) -> dict[str, Any]:
        """``encoded``: as ``SyncBuilder.build``'s (the caller writes it with ``encode_spliced``)."""
        await self.presence.user_syncing(request.user_id, set_presence)
        try:
            return await self.wait_for_changes(request, min(timeout_ms, MAX_TIMEOUT_MS), encoded)
        finally:
            self.presence.user_stopped_syncing(request.user_id)

    async def wait_for_changes(self, request: SyncRequest, timeout_ms: int,
                               encoded: bool = False) -> dict[str, Any]:
        can_wait = request.since is not None and timeout_ms > 0 and not request.full_state
        deadline = self.reactor.seconds() + timeout_ms / 1000.0
        rooms = await joined_rooms(self.hs, request.user_id) if can_wait else set()
        while True:
            remaining_ms = int((deadline - self.reactor.seconds()) * 1000)
            waiter = None
            if can_wait and remaining_ms > 0:
                # Registered before reading positions, so an advance that lands
                # while we build is not lost: it fires this waiter.
                waiter = self.notifier.wait(request.user_id, rooms, remaining_ms)
            response: dict[str, Any] | None = None
            try:
                upto = await self.builder.current_token()
                if waiter is None or not self.builder.nothing_new(request, upto):
                    response, context = await self.builder.build(request, upto, encoded=encoded)
                    rooms = rooms | context["joined_rooms"]
            except BaseException:
                discard(waiter)
                raise
            if waiter is None or (response is not None and has_changes(response)):
                discard(waiter)
                assert response is not None
                return response
            advance = await waiter
            if advance is None:
                if response is None:  # timed out without ever building: the answer as of now
                    response, _ = await self.builder.build(request, await self.builder.current_token(),
                                                           encoded=encoded)
                return response
            rooms = rooms | await joined_rooms(self.hs, request.user_id)
