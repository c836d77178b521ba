"""The iterative auth checks of state resolution v2, and the auth-event lookup shared
with v1: which events an event is checked against, given a partially resolved state."""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping

from homeserver.events.auth import AuthError, auth_types_for_event, check_auth_rules
from homeserver.events.event import Event
from homeserver.events.stateres.power import CREATE, CREATE_KEY, StateKey, find_create_event

#: Refusal by the auth rules, plus what a malformed event could make them raise. State
#: resolution must never fail because one remote event is odd; such an event is not applied.
_MALFORMED_EVENT_ERRORS = (AuthError, KeyError, TypeError, ValueError)


def passes_auth(event: Event, auth_events: Mapping[StateKey, Event]) -> bool:
    """Whether the auth rules allow `event` against `auth_events`."""
    try:
        check_auth_rules(event, auth_events)
    except _MALFORMED_EVENT_ERRORS:
        return False
    return True


def auth_events_from_state(
    event: Event,
    state: Mapping[StateKey, str],
    event_map: Mapping[str, Event],
    rejected_event_ids: Container[str] = frozenset(),
) -> dict[StateKey, Event]:
    """The state events that `event`'s auth rules read, looked up in `state` (skipping
    any that were rejected)."""
    auth_events: dict[StateKey, Event] = {}
    for key in auth_types_for_event(event):
        state_event_id = state.get(key)
        if state_event_id is not None and state_event_id not in rejected_event_ids:
            state_event = event_map.get(state_event_id)
            if state_event is not None:
                auth_events[key] = state_event
    return auth_events


def iterative_auth_checks(
    event_ids: Iterable[str],
    state: dict[StateKey, str],
    event_map: Mapping[str, Event],
    rejected_event_ids: Container[str] = frozenset(),
) -> dict[StateKey, str]:
    """Apply each event, in order, to `state` (mutated and returned) if the auth rules allow it.

    Each event is checked against its own (non-rejected) auth events, overridden by the
    partially resolved state for every key the auth rules need. In v12 the create event
    is never cited, so it is added from the room ID.
    """
    for event_id in event_ids:
        event = event_map.get(event_id)
        if event is None or event.state_key is None:
            continue
        auth_events: dict[StateKey, Event] = {}
        for auth_id in event.auth_event_ids:
            auth_event = event_map.get(auth_id)
            if (
                auth_event is not None
                and auth_event.state_key is not None
                and auth_id not in rejected_event_ids
            ):
                auth_events[(auth_event.type, auth_event.state_key)] = auth_event
        if event.room_version.room_id_is_create_event_hash and event.type != CREATE:
            create_event = find_create_event(event, event_map)
            if create_event is not None and create_event.event_id not in rejected_event_ids:
                auth_events[CREATE_KEY] = create_event
        try:
            auth_events.update(auth_events_from_state(event, state, event_map, rejected_event_ids))
        except _MALFORMED_EVENT_ERRORS:
            continue
        if passes_auth(event, auth_events):
            state[(event.type, event.state_key)] = event_id
    return state
