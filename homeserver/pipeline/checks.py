"""The pipeline's three auth stages, shared by local and remote events.

1. against the event's own auth_events (the events it cites);
2. against the state before it (resolved over its prev_events);
3. against the room's current state (failing only this one soft-fails the event).

Each returns None when the event passes, or the reason it does not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from homeserver.errors import bad_json, too_large
from homeserver.events.auth import (
    AuthError,
    auth_types_for_event,
    check_auth_events_selection,
    check_auth_rules,
)
from homeserver.events.canonical_json import encode_canonical_json
from homeserver.events.event import Event
from homeserver.events.pdu_format import MAX_PDU_BYTES, PDUFormatError, check_pdu_format
from storage.stores.state import StateKey, StateMap


def check_against_auth_events(event: Event, listed: Sequence[Event],
                              implied_create: Event | None = None) -> str | None:
    """Stage 1: the auth rules with exactly the events the event cites.

    ``implied_create`` is the create event a v12 event relies on without listing it.
    """
    try:
        check_auth_events_selection(event, listed)
        auth_map = {_key(e): e for e in listed if e.state_key is not None}
        if implied_create is not None:
            auth_map[("m.room.create", "")] = implied_create
        check_auth_rules(event, auth_map)
    except AuthError as exc:
        return str(exc)
    return None


def auth_state_ids(event: Event, state: StateMap) -> dict[StateKey, str]:
    """The entries of ``state`` that the auth rules consult for ``event``."""
    return {key: state[key] for key in auth_types_for_event(event) if key in state}


def check_against_state(event: Event, auth_map: Mapping[StateKey, Event]) -> str | None:
    """Stages 2 and 3: the auth rules with the auth events a state would supply."""
    try:
        check_auth_rules(event, auth_map)
    except AuthError as exc:
        return str(exc)
    return None


def check_local_shape(event: Event) -> None:
    """Size (413) and structure (400) limits of a locally built event, before the auth rules."""
    if "\x00" in event.type or "\x00" in (event.state_key or ""):
        raise bad_json("Event type and state key may not contain NUL characters")
    try:
        size = len(encode_canonical_json(event.pdu))
    except (TypeError, ValueError) as exc:
        raise bad_json(f"Invalid event JSON: {exc}") from None
    if size > MAX_PDU_BYTES:
        raise too_large(f"Event is {size} bytes; the limit is {MAX_PDU_BYTES}")
    try:
        check_pdu_format(event.pdu, event.room_version)
    except PDUFormatError as exc:
        raise bad_json(f"Invalid event: {exc}") from None


def _key(event: Event) -> StateKey:
    assert event.state_key is not None
    return (event.type, event.state_key)
