"""``GET /notifications``: the events that notified the user, newest first."""

from __future__ import annotations

from typing import Any

from homeserver.errors import invalid_param
from homeserver.handlers.push.notifications import PushRuleEvaluator
from homeserver.handlers.rooms.event_format import EventFormatter
from homeserver.server import Server
from storage.stores.events import EventStore
from storage.stores.push_actions import UNTHREADED, PushActionsStore

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


class NotificationListHandler:
    def __init__(self, hs: Server) -> None:
        self.store: PushActionsStore = hs.get(PushActionsStore)
        self.events: EventStore = hs.get(EventStore)
        self.formatter: EventFormatter = hs.get(EventFormatter)
        self.evaluator: PushRuleEvaluator = hs.get(PushRuleEvaluator)

    async def get_notifications(self, requester: Any, from_token: str | None, limit: int,
                                only: str | None) -> dict[str, Any]:
        before = None
        if from_token is not None:
            if not from_token.isdigit() or len(from_token) > 18:
                raise invalid_param("from is not a token this server gave out")
            before = int(from_token)
        limit = min(limit, MAX_LIMIT)
        user_id = requester.user_id
        # Everything sent before this request is in the answer.
        await self.evaluator.wait_for(await self.events.get_max_stream_position())
        actions = await self.store.get_notifications(user_id, before, limit, only == "highlight") if limit else []
        found = await self.events.get_events([a.event_id for a in actions])
        actions = [a for a in actions if a.event_id in found]
        formatted = await self.formatter.format_events([found[a.event_id] for a in actions], requester)
        read = await self.store.get_read_positions(user_id, {a.room_id for a in actions})
        notifications = []
        for action, event in zip(actions, formatted, strict=True):
            positions = read.get(action.room_id, {})
            read_upto = max(positions.get(UNTHREADED, 0), positions.get(action.thread_id, 0))
            notifications.append({"actions": action.actions, "event": event, "room_id": action.room_id,
                                  "read": action.stream_ordering <= read_upto, "ts": action.received_ts})
        body: dict[str, Any] = {"notifications": notifications}
        if limit and len(actions) == limit:
            body["next_token"] = str(actions[-1].stream_ordering)
        return body
