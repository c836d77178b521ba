"""State resolution v2 (room versions 2-11) and v2.1 (room version 12, MSC4297).

v2.1 differs in two places: the full conflicted set also holds the conflicted state
subgraph, and the first iterative auth checks start from an empty state rather than the
unconflicted state map (which is still laid over the result at the end).
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence

from homeserver.events.event import Event
from homeserver.events.room_versions import RoomVersion, StateResAlgorithm
from homeserver.events.stateres.auth_graph import (
    auth_difference,
    conflicted_state_subgraph,
    power_event_graph,
)
from homeserver.events.stateres.iterative import iterative_auth_checks
from homeserver.events.stateres.ordering import (
    mainline_sort,
    power_sort_key,
    reverse_topological_power_sort,
)
from homeserver.events.stateres.power import POWER_LEVELS_KEY, StateKey, is_power_event


def split_conflicted(
    state_sets: Sequence[Mapping[StateKey, str]],
) -> tuple[dict[StateKey, str], dict[StateKey, set[str]]]:
    """(unconflicted state map, conflicted state set by key).

    A key is unconflicted only if every state set holds it with the same event; a key
    missing from some set is conflicted even if the others agree.
    """
    values: dict[StateKey, set[str]] = {}
    presence: dict[StateKey, int] = {}
    for state_set in state_sets:
        for key, event_id in state_set.items():
            values.setdefault(key, set()).add(event_id)
            presence[key] = presence.get(key, 0) + 1
    unconflicted: dict[StateKey, str] = {}
    conflicted: dict[StateKey, set[str]] = {}
    for key, event_ids in values.items():
        if len(event_ids) == 1 and presence[key] == len(state_sets):
            unconflicted[key] = next(iter(event_ids))
        else:
            conflicted[key] = event_ids
    return unconflicted, conflicted


def resolve_v2(
    room_version: RoomVersion,
    state_sets: Sequence[Mapping[StateKey, str]],
    event_map: Mapping[str, Event],
    rejected_event_ids: Container[str] = frozenset(),
) -> dict[StateKey, str]:
    """Resolve with state res v2, or v2.1 when the room version says so."""
    is_v2_1 = room_version.state_res is StateResAlgorithm.V2_1
    unconflicted, conflicted_by_key = split_conflicted(state_sets)
    if not conflicted_by_key:
        return unconflicted

    conflicted: set[str] = set().union(*conflicted_by_key.values())
    full_conflicted_set = conflicted | auth_difference(state_sets, unconflicted, event_map)
    if is_v2_1:
        full_conflicted_set |= conflicted_state_subgraph(conflicted, event_map)
    # Events we do not hold cannot be checked, so they take no part.
    full_conflicted_set = {
        event_id for event_id in full_conflicted_set if event_map.get(event_id) is not None
    }

    # 1. Power events and their auth ancestors in the full conflicted set, power-ordered.
    power_events = [
        event_id for event_id in full_conflicted_set if is_power_event(event_map[event_id])
    ]
    graph = power_event_graph(power_events, full_conflicted_set, event_map)
    sorted_power_events = reverse_topological_power_sort(graph, power_sort_key(event_map))

    # 2. Iterative auth checks from the unconflicted state (v2) or from nothing (v2.1).
    initial_state = {} if is_v2_1 else dict(unconflicted)
    partial_state = iterative_auth_checks(
        sorted_power_events, initial_state, event_map, rejected_event_ids
    )

    # 3. Everything else, in mainline order of the power levels just resolved.
    power_sorted = set(sorted_power_events)
    remaining = [event_id for event_id in full_conflicted_set if event_id not in power_sorted]
    sorted_remaining = mainline_sort(remaining, partial_state.get(POWER_LEVELS_KEY), event_map)

    # 4. Iterative auth checks of those on top of the partial state.
    resolved = iterative_auth_checks(sorted_remaining, partial_state, event_map, rejected_event_ids)

    # 5. The unconflicted state map wins over whatever the checks produced.
    resolved.update(unconflicted)
    return resolved
