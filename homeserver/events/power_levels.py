"""Reading power levels out of room state, with each room version's value rules.

v1-9 accept "stringy" levels ("100", " +50 "), v1-5 also "floaty" ones (truncated);
v10+ accept integers only. v12 room creators have infinite power. State resolution
uses `get_user_power_level` to order events by their sender's power.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from homeserver.events.event import Event
from homeserver.events.room_versions import RoomVersion

StateKey = tuple[str, str]
AuthEvents = Mapping[StateKey, Event]
#: An integer power level, or math.inf for a v12 room creator.
PowerLevel = int | float

CREATE_KEY: StateKey = ("m.room.create", "")
POWER_LEVELS_KEY: StateKey = ("m.room.power_levels", "")
JOIN_RULES_KEY: StateKey = ("m.room.join_rules", "")

CREATOR_POWER_LEVEL: PowerLevel = math.inf
#: A pre-v12 creator's level while the room has no m.room.power_levels event.
IMPLICIT_CREATOR_LEVEL = 100

#: The top-level integer properties and their defaults when the property is absent.
NAMED_LEVEL_DEFAULTS: dict[str, int] = {
    "ban": 50,
    "kick": 50,
    "redact": 50,
    "invite": 0,
    "users_default": 0,
    "events_default": 0,
    "state_default": 50,
}
NAMED_LEVELS = tuple(NAMED_LEVEL_DEFAULTS)

_STRINGY_INT_RE = re.compile(r"^\s*[+-]?[0-9]+\s*$")


def parse_power_level(value: Any, room_version: RoomVersion) -> int | None:
    """The integer a power-level value stands for, or None if it is not valid here."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if room_version.enforce_int_power_levels:
        return None
    if isinstance(value, str) and _STRINGY_INT_RE.match(value):
        return int(value.strip())
    if isinstance(value, float) and not room_version.strict_canonical_json and math.isfinite(value):
        # "Floaty" levels (v1-5): truncated toward zero. v6+ JSON has no floats.
        return math.trunc(value)
    return None


def room_creators(create_event: Event) -> set[str]:
    """The room's creators: v12 sender + additional_creators; v11 sender; earlier `creator`."""
    room_version = create_event.room_version
    if not room_version.implicit_room_creator:
        creator = create_event.content.get("creator")
        return {creator} if isinstance(creator, str) else set()
    creators = {create_event.sender}
    if room_version.privileged_creators:
        additional = create_event.content.get("additional_creators")
        if isinstance(additional, list):
            creators.update(c for c in additional if isinstance(c, str))
    return creators


def get_named_level(name: str, auth_events: AuthEvents) -> int:
    """A top-level level (`ban`, `kick`, `invite`, ...) with the spec's defaults.

    With no power_levels event at all, `state_default` is 0 rather than 50.
    """
    power_levels = auth_events.get(POWER_LEVELS_KEY)
    if power_levels is None:
        return 0 if name == "state_default" else NAMED_LEVEL_DEFAULTS[name]
    parsed = parse_power_level(power_levels.content.get(name), power_levels.room_version)
    return NAMED_LEVEL_DEFAULTS[name] if parsed is None else parsed


def get_user_power_level(user_id: str, auth_events: AuthEvents) -> PowerLevel:
    """A user's power level in the given state (infinite for v12 creators)."""
    create = auth_events.get(CREATE_KEY)
    if create is not None and create.room_version.privileged_creators:
        if user_id in room_creators(create):
            return CREATOR_POWER_LEVEL
    power_levels = auth_events.get(POWER_LEVELS_KEY)
    if power_levels is None:
        if create is not None and user_id in room_creators(create):
            return IMPLICIT_CREATOR_LEVEL
        return 0
    users = power_levels.content.get("users")
    if isinstance(users, dict) and user_id in users:
        parsed = parse_power_level(users[user_id], power_levels.room_version)
        if parsed is not None:
            return parsed
    return get_named_level("users_default", auth_events)


def get_required_event_level(event_type: str, is_state: bool, auth_events: AuthEvents) -> int:
    """The level needed to send an event of this type (`events`, else the default)."""
    power_levels = auth_events.get(POWER_LEVELS_KEY)
    if power_levels is not None:
        events = power_levels.content.get("events")
        if isinstance(events, dict) and event_type in events:
            parsed = parse_power_level(events[event_type], power_levels.room_version)
            if parsed is not None:
                return parsed
    return get_named_level("state_default" if is_state else "events_default", auth_events)
