"""What state resolution needs to know about power: power events, creators, sender levels.

These read only an event and the events it cites (its `auth_events`, and in v12 the create
event named by its room ID), never the room's current state, because the orderings of
state resolution must be computable from the events alone.
"""

from __future__ import annotations

from collections.abc import Mapping

from homeserver.events.event import Event
from homeserver.events.power_levels import (
    CREATE_KEY,
    POWER_LEVELS_KEY,
    PowerLevel,
    StateKey,
    get_user_power_level,
)

__all__ = [
    "CREATE_KEY",
    "POWER_LEVELS_KEY",
    "StateKey",
    "find_create_event",
    "is_power_event",
    "power_levels_auth_event",
    "sender_power_level",
]

CREATE = "m.room.create"
POWER_LEVELS = "m.room.power_levels"
JOIN_RULES = "m.room.join_rules"
MEMBER = "m.room.member"


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


def sender_power_level(event: Event, event_map: Mapping[str, Event]) -> PowerLevel:
    """The sender's level "when looking at their auth_events" (the power-ordering tie-break):
    the power_levels event the event cites, and the room's create event for the creators'
    defaults (infinite in v12)."""
    auth_events: dict[StateKey, Event] = {}
    create_event = find_create_event(event, event_map)
    if create_event is not None:
        auth_events[CREATE_KEY] = create_event
    power_levels = power_levels_auth_event(event, event_map)
    if power_levels is not None:
        auth_events[POWER_LEVELS_KEY] = power_levels
    return get_user_power_level(event.sender, auth_events)
