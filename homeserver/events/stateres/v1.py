"""State resolution v1 (room version 1 only).

Known to reset state in some forks; kept because v1 rooms still exist. Follows the spec
(`rooms/v1.md`); where the spec is silent (every candidate for an ordinary key fails
auth) it keeps the lowest-depth candidate, as Synapse does, so servers agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from homeserver.events.event import Event
from homeserver.events.stateres.iterative import auth_events_from_state, passes_auth
from homeserver.events.stateres.power import JOIN_RULES, MEMBER, POWER_LEVELS, StateKey


def _sha1_hex(event_id: str) -> str:
    return hashlib.sha1(event_id.encode("utf-8")).hexdigest()


def _ascending_depth_descending_sha1(events: list[Event]) -> list[Event]:
    """The order auth-type conflicts are replayed in: ascending depth, then descending sha1."""
    by_hash = sorted(events, key=lambda event: _sha1_hex(event.event_id), reverse=True)
    return sorted(by_hash, key=lambda event: event.depth)


def _allowed(
    event: Event, resolved: Mapping[StateKey, str], event_map: Mapping[str, Event]
) -> bool:
    try:
        auth_events = auth_events_from_state(event, resolved, event_map)
    except (KeyError, TypeError, ValueError):
        return False
    return passes_auth(event, auth_events)


def _resolve_auth_conflict(
    key: StateKey,
    events: list[Event],
    resolved: dict[StateKey, str],
    event_map: Mapping[str, Event],
) -> None:
    """Take the oldest event, then each newer one while the auth rules keep allowing it."""
    ordered = _ascending_depth_descending_sha1(events)
    resolved[key] = ordered[0].event_id
    for event in ordered[1:]:
        if not _allowed(event, resolved, event_map):
            return
        resolved[key] = event.event_id


def _resolve_ordinary_conflict(
    key: StateKey,
    events: list[Event],
    resolved: dict[StateKey, str],
    event_map: Mapping[str, Event],
) -> None:
    """The deepest (then lowest sha1) event that passes auth in the resolved state."""
    by_hash = sorted(events, key=lambda event: _sha1_hex(event.event_id))
    ordered = sorted(by_hash, key=lambda event: event.depth, reverse=True)
    for event in ordered:
        if _allowed(event, resolved, event_map):
            resolved[key] = event.event_id
            return
    resolved[key] = ordered[-1].event_id


def resolve_v1(
    state_sets: Sequence[Mapping[StateKey, str]], event_map: Mapping[str, Event]
) -> dict[StateKey, str]:
    """Resolve with the original algorithm: a key conflicts only when the sets that hold
    it disagree; conflicts are settled power levels first, then join rules, then members,
    then the rest, each against the state resolved so far."""
    candidates: dict[StateKey, set[str]] = {}
    for state_set in state_sets:
        for key, event_id in state_set.items():
            candidates.setdefault(key, set()).add(event_id)

    resolved: dict[StateKey, str] = {}
    conflicted: dict[StateKey, list[Event]] = {}
    for key, event_ids in candidates.items():
        if len(event_ids) == 1:
            resolved[key] = next(iter(event_ids))
            continue
        events = [event_map[event_id] for event_id in event_ids if event_id in event_map]
        if events:
            conflicted[key] = events

    def keys_of_type(event_type: str) -> list[StateKey]:
        return sorted(key for key in conflicted if key[0] == event_type)

    for auth_type in (POWER_LEVELS, JOIN_RULES, MEMBER):
        for key in keys_of_type(auth_type):
            _resolve_auth_conflict(key, conflicted[key], resolved, event_map)
    for key in sorted(conflicted):
        if key[0] not in (POWER_LEVELS, JOIN_RULES, MEMBER):
            _resolve_ordinary_conflict(key, conflicted[key], resolved, event_map)
    return resolved
