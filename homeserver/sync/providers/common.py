"""Small helpers the providers share: the parsed filter and response skeletons."""

from __future__ import annotations

from typing import Any

from homeserver.sync.filtering import SyncFilter
from homeserver.sync.provider import SyncRequest


def request_filter(request: SyncRequest, context: dict[str, Any]) -> SyncFilter:
    """The request's filter, parsed once per sync."""
    parsed = context.get("filter")
    if parsed is None:
        parsed = context["filter"] = SyncFilter.from_json(request.filter)
    return parsed


def joined_room_entry(response: dict[str, Any], room_id: str) -> dict[str, Any]:
    """rooms.join.<room_id>, created with every section a client expects."""
    joined = response.setdefault("rooms", {}).setdefault("join", {})
    entry = joined.get(room_id)
    if entry is None:
        entry = joined[room_id] = {
            "timeline": {"events": [], "limited": False},
            "state": {"events": []},
            "ephemeral": {"events": []},
            "account_data": {"events": []},
            "unread_notifications": {"notification_count": 0, "highlight_count": 0},
            "summary": {},
        }
    return entry


def room_entry(response: dict[str, Any], section: str, room_id: str) -> dict[str, Any]:
    """rooms.<leave|knock|invite>.<room_id>."""
    return response.setdefault("rooms", {}).setdefault(section, {}).setdefault(room_id, {})
