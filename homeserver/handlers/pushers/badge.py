"""Badge updates: after a user's read receipt, each of their pushers gets the new badge.

The badge (``counts.unread``, rooms with unread notifications) drops when the user reads on
one device; their other devices learn it from a notification that carries only ``counts``
and ``devices`` (no ``event_id``: the Push Gateway API's "only updated badge counts"), as
Synapse sends one after each receipt. Best effort: not queued, not retried, and a pusher
whose gateway is failing is skipped (its next real notification carries the count).
"""

from __future__ import annotations

import logging
from typing import Any

from homeserver.handlers.ephemeral.receipts import ReceiptHandler
from homeserver.handlers.pushers.http_pusher import HttpPusher, device_entry
from homeserver.server import Server
from storage.stores.push_actions import PushActionsStore
from storage.stores.pushers import Pusher, PusherStore

logger = logging.getLogger(__name__)


def badge_body(pusher: Pusher, unread: int) -> dict[str, Any]:
    device = device_entry(pusher, {})
    del device["tweaks"]
    return {"notification": {"counts": {"unread": unread}, "devices": [device]}}


class BadgeUpdates:
    def __init__(self, hs: Server) -> None:
        self.store = hs.get(PusherStore)
        self.push_actions = hs.get(PushActionsStore)
        self.http = hs.get(HttpPusher)
        hs.get(ReceiptHandler).on_read.append(self.on_read)

    async def on_read(self, user_id: str) -> None:
        if not await self.store.users_with_pushers([user_id]):
            return
        pushers = [p for p in await self.store.get_pushers_for_users([user_id]) if p.failing_since is None]
        if not pushers:
            return
        unread = await self.push_actions.get_badge_count(user_id)
        for pusher in pushers:
            result = await self.http.send(pusher, badge_body(pusher, unread))
            if not result.delivered:
                logger.info("pushers: the badge update for pusher %d was not delivered", pusher.id)
