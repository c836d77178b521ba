"""What state resolution needs to know about power: power events, creators, sender levels.

These read only an event and the events it cites (its `auth_events`, and in v12 the create
event named by its room ID), never the room's current state, because the orderings of
state resolution must be computable from the events alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from homeserver.events.event import Event
from homeserver.events.room_versions import RoomVersion

StateKey = tuple[str, str]

CREATE = "m.room.create"
POWER_LEVELS = "m.room.power_levels"
JOIN_RULES = "m.room.join_rules"
MEMBER = "m.room.member"

CREATE_KEY: StateKey = (CREATE, "")
POWER_LEVELS_KEY: StateKey = (POWER_LEVELS, "")

#: A room creator's level in v12: higher than any integer a power_levels event can hold.
INFINITE_POWER = math.inf

#: Pre-v12, the creator's level when no power_levels event exists yet (the auth rules' default).
CREATOR_DEFAULT_POWER = 100


def is_power_event(event: Event) -> bool:
    """Power events are those that can take abilities away (spec "Power events").

    The create event counts too, as in Synapse and ruma: it is the root of every auth
    chain and must sort before everything else when it is itself in conflict.
    """
    state_key = event.state_key
    if state_key is None:
        return False
    event_type = event.type
    if event_type in (POWER_LEVELS, JOIN_RULES, CREATE):
        return state_key == ""
    if event_type == MEMBER:
        return event.membership in ("leave", "ban") and event.sender != state_key
    return False


def as_power_level(value: Any, default: int) -> int:
    """Read a power level leniently: v1-9 rooms may hold strings ("50") or floats."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return default
    return default


def create_event_id_from_room_id(room_id: str) -> str | None:
    """v12 room IDs are the create event's ID with `!` for `$`."""
    if room_id.startswith("!") and len(room_id) > 1:
        return "$" + room_id[1:]
    return None


def find_create_event(event: Event, event_map: Mapping[str, Event]) -> Event | None:
    """The create event an event relies on: via the room ID in v12, else via its auth events."""
    if event.type == CREATE and event.state_key == "":
        return event
    if event.room_version.room_id_is_create_event_hash:
        create_id = create_event_id_from_room_id(event.room_id)
        return event_map.get(create_id) if create_id is not None else None
    for auth_id in event.auth_event_ids:
        auth_event = event_map.get(auth_id)
        if auth_event is not None and auth_event.type == CREATE and auth_event.state_key == "":
            return auth_event
    return None


def room_creators(create_event: Event, room_version: RoomVersion) -> frozenset[str]:
    """The room's creators: `content.creator` before v11, the sender from v11, plus
    `additional_creators` in v12."""
    if not room_version.implicit_room_creator:
        creator = create_event.content.get("creator")
        return frozenset((creator,)) if isinstance(creator, str) else frozenset()
    creators = {create_event.sender}
    if room_version.privileged_creators:
        additional = create_event.content.get("additional_creators")
        if isinstance(additional, list):
            creators.update(user for user in additional if isinstance(user, str))
    return frozenset(creators)


def power_levels_auth_event(event: Event, event_map: Mapping[str, Event]) -> Event | None:
    """The `m.room.power_levels` event among an event's auth events, if it cites one."""
    for auth_id in event.auth_event_ids:
        auth_event = event_map.get(auth_id)
        if (
            auth_event is not None
            and auth_event.type == POWER_LEVELS
            and auth_event.state_key == ""
        ):
            return auth_event
    return None


def sender_power_level(event: Event, event_map: Mapping[str, Event]) -> float:
    """The sender's level "when looking at their auth_events" (the power-ordering tie-break).

    Returns a float only for v12 creators (infinite); otherwise an integer level.
    """
    room_version = event.room_version
    create_event = find_create_event(event, event_map)
    creators = room_creators(create_event, room_version) if create_event else frozenset()
    sender = event.sender
    if room_version.privileged_creators and sender in creators:
        return INFINITE_POWER
    power_levels = power_levels_auth_event(event, event_map)
    if power_levels is None:
        return CREATOR_DEFAULT_POWER if sender in creators else 0
    content = power_levels.content
    users = content.get("users")
    if isinstance(users, dict) and sender in users:
        return as_power_level(users[sender], 0)
    return as_power_level(content.get("users_default"), 0)
