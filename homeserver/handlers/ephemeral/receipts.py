"""Read receipts (m.read, m.read.private) and the m.fully_read read marker."""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet.defer import Deferred

from homeserver.errors import MatrixError, forbidden, invalid_param
from homeserver.handlers.rooms.members import is_joined
from homeserver.handlers.rooms.room_state import check_room_id
from homeserver.server import Server
from storage.stores.account_data import AccountDataStore
from storage.stores.receipts import UNTHREADED, ReceiptStore
from storage.stores.sync_events import SyncEventsStore

READ = "m.read"
READ_PRIVATE = "m.read.private"
FULLY_READ = "m.fully_read"
RECEIPT_TYPES = (READ, READ_PRIVATE, FULLY_READ)

logger = logging.getLogger(__name__)

#: ``listener(user_id)`` after the user's read receipt is stored (the pushers' badge update).
ReadListener = Callable[[str], Awaitable[Any] | None]


class ReceiptHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.store: ReceiptStore = hs.get(ReceiptStore)
        self.on_read: list[ReadListener] = []

    async def current_position(self) -> int:
        return (await self.store.stream_writer()).get_current_token()

    async def send_receipt(self, user_id: str, room_id: str, receipt_type: str, event_id: str,
                           thread_id: str | None = None) -> None:
        if receipt_type not in RECEIPT_TYPES:
            raise invalid_param(f"Unknown receipt type {receipt_type!r}")
        if thread_id is not None and (receipt_type == FULLY_READ
                                      or (thread_id != "main" and not thread_id.startswith("$"))):
            raise invalid_param("thread_id must be 'main' or an event ID, and not on m.fully_read")
        await self._check_event(user_id, room_id, event_id)
        if receipt_type == FULLY_READ:
            # Straight to the store: the account-data API refuses m.fully_read from
            # clients, but the read-marker path is exactly where it is meant to be set.
            await self.hs.get(AccountDataStore).put_account_data(
                user_id, room_id, FULLY_READ, {"event_id": event_id})
            return
        stream_id = await self.store.insert_receipt(room_id, receipt_type, user_id,
                                                    thread_id or UNTHREADED, event_id,
                                                    int(time.time() * 1000))
        writer = await self.store.stream_writer()
        if receipt_type == READ_PRIVATE:
            writer.announce(stream_id, users=[user_id])
        else:
            writer.announce(stream_id, rooms=[room_id])
        for listener in self.on_read:
            outcome = listener(user_id)
            if inspect.isawaitable(outcome):
                Deferred.fromCoroutine(_logged(outcome))

    async def set_read_markers(self, user_id: str, room_id: str, markers: dict[str, str]) -> None:
        """POST /read_markers: any of m.fully_read, m.read, m.read.private."""
        check_room_id(room_id)
        for receipt_type in (FULLY_READ, READ, READ_PRIVATE):
            event_id = markers.get(receipt_type)
            if event_id is not None:
                await self.send_receipt(user_id, room_id, receipt_type, event_id)

    async def _check_event(self, user_id: str, room_id: str, event_id: str) -> None:
        check_room_id(room_id)
        if not await is_joined(self.hs, user_id, room_id):
            raise forbidden("You are not in this room")
        found = await self.hs.get(SyncEventsStore).event_position(event_id)
        if found is None or found[1] != room_id:
            raise MatrixError(404, "M_NOT_FOUND", "Unknown event in this room")


async def _logged(awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception:
        logger.exception("receipts: a read listener failed")
