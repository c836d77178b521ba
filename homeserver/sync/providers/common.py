"""Small helpers the providers share: the parsed filter and response skeletons."""

from __future__ import annotations

import json
from typing import Any

from homeserver.sync.filtering import SyncFilter
from homeserver.sync.provider import SyncRequest

#: id(filter JSON) -> (that JSON, parsed): a WebSocket stream builds every frame from the same
#: filter object, so it is parsed once per connection rather than once per frame.
_PARSED: dict[int, tuple[dict[str, Any], SyncFilter]] = {}
_MAX_PARSED = 20_000
#: id(filter JSON) -> (that JSON, its canonical text): what readers sharing work compare.
_KEYS: dict[int, tuple[dict[str, Any], str]] = {}


def request_filter(request: SyncRequest, context: dict[str, Any]) -> SyncFilter:
    """The request's filter, parsed once per sync (and once per filter object)."""
    parsed = context.get("filter")
    if parsed is None:
        known = _PARSED.get(id(request.filter))
        if known is not None and known[0] is request.filter:
            parsed = known[1]
        else:
            parsed = SyncFilter.from_json(request.filter)
            if len(_PARSED) >= _MAX_PARSED:
                _PARSED.clear()
            _PARSED[id(request.filter)] = (request.filter, parsed)
        context["filter"] = parsed
    return parsed


def filter_key(request: SyncRequest) -> str:
    """The filter as sorted JSON: equal for every connection asking the same thing."""
    known = _KEYS.get(id(request.filter))
    if known is not None and known[0] is request.filter:
        return known[1]
    text = json.dumps(request.filter, sort_keys=True, separators=(",", ":"))
    if len(_KEYS) >= _MAX_PARSED:
        _KEYS.clear()
    _KEYS[id(request.filter)] = (request.filter, text)
    return text


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
