"""One HTTP pusher delivery: build the Push Gateway API payload and POST it.

``POST {data.url}`` (``/_matrix/push/v1/notify``) with ``{"notification": {...}}``:

- the full format: ``event_id``, ``room_id``, ``type``, ``sender``, ``sender_display_name``,
  ``room_name``, ``room_alias``, ``membership``/``user_is_target`` for member events,
  ``prio``, ``content`` (when it encodes to at most ``MAX_CONTENT_BYTES``), ``counts`` and ``devices``;
- ``data.format == "event_id_only"``: only ``event_id``, ``room_id``, ``counts`` and ``devices``,
  so that no message content leaves the server (the app fetches the event itself).

``devices`` holds this pusher only: ``app_id``, ``pushkey``, ``pushkey_ts`` (seconds), ``data``
without ``url`` (the spec: everything else, ``format`` included, is forwarded), and the
``tweaks`` of the notification's actions. The gateway answers ``{"rejected": [pushkey...]}``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import attrs

from homeserver.outbound.client import OutboundHttpClient, OutboundRequestError
from homeserver.server import Server
from storage.stores.events import EventStore, StoredEvent
from storage.stores.pushers import Pusher, QueuedNotification
from storage.stores.state import StateGroupStore

logger = logging.getLogger(__name__)

#: Event content is forwarded only up to this size (push providers cap payloads at a few KiB).
MAX_CONTENT_BYTES = 4096
#: How long one POST to a gateway may take before it counts as a failure.
PUSH_TIMEOUT_S = 30.0
MAX_GATEWAY_RESPONSE_BYTES = 64 * 1024
EVENT_ID_ONLY = "event_id_only"


@attrs.frozen
class PushResult:
    """``delivered``: the gateway took it (2xx with a JSON object); ``rejected``: pushkeys it refused."""

    delivered: bool
    rejected: tuple[str, ...] = ()


def tweaks_for_actions(actions: list[Any]) -> dict[str, Any]:
    """The ``set_tweak`` actions as ``{tweak: value}`` (a tweak without a value is true)."""
    tweaks: dict[str, Any] = {}
    for action in actions:
        if isinstance(action, dict) and isinstance(action.get("set_tweak"), str):
            tweaks[action["set_tweak"]] = action.get("value", True)
    return tweaks


def device_entry(pusher: Pusher, tweaks: dict[str, Any]) -> dict[str, Any]:
    return {
        "app_id": pusher.app_id,
        "pushkey": pusher.pushkey,
        "pushkey_ts": pusher.pushkey_ts // 1000,
        "data": {key: value for key, value in pusher.data.items() if key != "url"},
        "tweaks": tweaks,
    }


def priority(event_type: str, tweaks: dict[str, Any]) -> str:
    """High for what should wake a phone: highlights, sounds, and encrypted events (whose
    content the server cannot judge), as Synapse does."""
    if event_type == "m.room.encrypted" or tweaks.get("highlight") or tweaks.get("sound"):
        return "high"
    return "low"


class HttpPusher:
    """Builds and sends the notifications of HTTP pushers (stateless; the pool drives it)."""

    def __init__(self, hs: Server) -> None:
        self.http = hs.get(OutboundHttpClient)
        self.events = hs.get(EventStore)
        self.state_groups = hs.get(StateGroupStore)

    async def build(self, pusher: Pusher, item: QueuedNotification, unread: int) -> dict[str, Any] | None:
        """The request body for one notification, or None if its event is gone."""
        tweaks = tweaks_for_actions(item.actions)
        notification: dict[str, Any] = {
            "event_id": item.event_id,
            "room_id": item.room_id,
            "counts": {"unread": unread},
            "devices": [device_entry(pusher, tweaks)],
        }
        if pusher.data.get("format") == EVENT_ID_ONLY:
            return {"notification": notification}
        stored = await self.events.get_event(item.event_id)
        if stored is None:
            return None
        event = stored.event
        notification.update({"type": event.type, "sender": event.sender, "prio": priority(event.type, tweaks)})
        notification.update(await self._context(stored, pusher.user_id))
        if event.type == "m.room.member" and event.state_key is not None:
            notification["membership"] = event.content.get("membership")
            notification["user_is_target"] = event.state_key == pusher.user_id
        content = event.content
        if content and len(json.dumps(content, ensure_ascii=False).encode("utf-8")) <= MAX_CONTENT_BYTES:
            notification["content"] = content
        return {"notification": notification}

    async def _context(self, stored: StoredEvent, user_id: str) -> dict[str, Any]:
        """The sender's display name and the room's name and alias, in the state after the event."""
        if stored.state_group is None:
            return {}
        sender = stored.event.sender
        keys = [("m.room.member", sender), ("m.room.name", ""), ("m.room.canonical_alias", "")]
        state = await self.state_groups.get_state_ids_filtered(stored.state_group, keys)
        events = await self.events.get_events(state.values())
        found: dict[str, Any] = {}

        def text(key: tuple[str, str], field: str) -> str | None:
            event_id = state.get(key)
            held = events.get(event_id) if event_id else None
            value = held.event.content.get(field) if held is not None else None
            return value if isinstance(value, str) and value else None

        for name, key, field in (("sender_display_name", ("m.room.member", sender), "displayname"),
                                 ("room_name", ("m.room.name", ""), "name"),
                                 ("room_alias", ("m.room.canonical_alias", ""), "alias")):
            value = text(key, field)
            if value is not None:
                found[name] = value
        return found

    async def send(self, pusher: Pusher, body: dict[str, Any]) -> PushResult:
        """POST to the pusher's gateway. Any transport failure, non-2xx answer or a body that is
        not a JSON object counts as not delivered (the pool backs off and retries)."""
        url = pusher.data.get("url")
        if not isinstance(url, str):
            return PushResult(False)
        try:
            response = await self.http.request("POST", url, json_body=body, timeout_s=PUSH_TIMEOUT_S,
                                               max_response_bytes=MAX_GATEWAY_RESPONSE_BYTES)
            if not 200 <= response.code < 300:
                response.discard()
                logger.info("push gateway %s answered %d for pusher %d", url, response.code, pusher.id)
                return PushResult(False)
            answer = await response.json()
        except OutboundRequestError as exc:
            logger.info("push gateway %s failed for pusher %d: %s", url, pusher.id, exc)
            return PushResult(False)
        if not isinstance(answer, dict):
            logger.info("push gateway %s answered with something other than a JSON object", url)
            return PushResult(False)
        rejected = answer.get("rejected")
        if not isinstance(rejected, list):
            return PushResult(True)
        return PushResult(True, tuple(key for key in rejected if isinstance(key, str)))
