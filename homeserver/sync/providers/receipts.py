"""rooms.join.<room>.ephemeral: m.receipt events (stream "receipts").

Private receipts (m.read.private) go only to their owner.
"""

from __future__ import annotations

from typing import Any

from homeserver.handlers.ephemeral.receipts import ReceiptHandler
from homeserver.server import Server
from homeserver.sync.provider import SyncRequest
from homeserver.sync.providers.common import joined_room_entry, request_filter
from storage.stores.receipts import UNTHREADED, Receipt, ReceiptStore


def receipt_event(receipts: list[Receipt]) -> dict[str, Any]:
    content: dict[str, Any] = {}
    for receipt in receipts:
        data: dict[str, Any] = {"ts": receipt.ts}
        if receipt.thread_id != UNTHREADED:
            data["thread_id"] = receipt.thread_id
        by_type = content.setdefault(receipt.event_id, {}).setdefault(receipt.receipt_type, {})
        by_type[receipt.user_id] = data
    return {"type": "m.receipt", "content": content}


class ReceiptsProvider:
    stream = "receipts"

    def __init__(self, hs: Server) -> None:
        self.handler: ReceiptHandler = hs.get(ReceiptHandler)
        self.store: ReceiptStore = hs.get(ReceiptStore)
        self._position = 0

    async def prepare(self) -> None:
        self._position = await self.handler.current_position()

    def current_position(self) -> int:
        return self._position

    def still(self, since: int, upto: int, context: dict[str, Any]) -> bool:
        return since >= upto

    async def build(self, request: SyncRequest, since: int | None, upto: int,
                    response: dict[str, Any], context: dict[str, Any]) -> None:
        sync_filter = request_filter(request, context)
        ephemeral = sync_filter.ephemeral
        if ephemeral.blocks_everything or not ephemeral.allows_type("m.receipt"):
            return
        joined: set[str] = {room for room in context["joined_rooms"]
                            if ephemeral.allows_room(room) and sync_filter.allows_room(room)}
        if since is None:
            found = await self.store.get_receipts_for_rooms(sorted(joined), upto)
        elif since >= upto:
            found = []  # the stream has not moved: nothing to ask the database
        else:
            found = [r for r in await self.store.get_changes(since, upto) if r.room_id in joined]
        by_room: dict[str, list[Receipt]] = {}
        for receipt in found:
            if receipt.is_private and receipt.user_id != request.user_id:
                continue
            if ephemeral.senders is not None and receipt.user_id not in ephemeral.senders:
                continue
            if receipt.user_id in ephemeral.not_senders:
                continue
            by_room.setdefault(receipt.room_id, []).append(receipt)
        for room_id, receipts in by_room.items():
            joined_room_entry(response, room_id)["ephemeral"]["events"].append(receipt_event(receipts))
