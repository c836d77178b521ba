"""The two orderings of state resolution v2: reverse topological power ordering and
mainline ordering. Both are total and depend only on the events, so every server that
holds the same events sorts them the same way.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from homeserver.events.event import Event
from homeserver.events.stateres.power import power_levels_auth_event, sender_power_level


def power_sort_key(event_map: Mapping[str, Event]) -> Callable[[str], tuple[Any, ...]]:
    """The spec's tie-break for the power ordering: higher sender power level first,
    then earlier origin_server_ts, then smaller event ID."""

    def key(event_id: str) -> tuple[Any, ...]:
        event = event_map[event_id]
        return (-sender_power_level(event, event_map), event.origin_server_ts, event_id)

    return key


def reverse_topological_power_sort(
    graph: Mapping[str, Iterable[str]], sort_key: Callable[[str], tuple[Any, ...]]
) -> list[str]:
    """Kahn's algorithm over the auth DAG, earliest first, taking the smallest ready event
    by `sort_key` at each step (the lexicographically smallest topological order).

    `graph` maps each event to its auth events; an auth event outside the graph is ignored.
    """
    waiting_on: dict[str, int] = {}
    dependants: dict[str, list[str]] = {event_id: [] for event_id in graph}
    for event_id, auth_ids in graph.items():
        in_graph = {auth_id for auth_id in auth_ids if auth_id in dependants}
        waiting_on[event_id] = len(in_graph)
        for auth_id in in_graph:
            dependants[auth_id].append(event_id)

    ready = [(sort_key(event_id), event_id) for event_id, n in waiting_on.items() if n == 0]
    heapq.heapify(ready)
    ordered: list[str] = []
    while ready:
        _, event_id = heapq.heappop(ready)
        ordered.append(event_id)
        for dependant in dependants[event_id]:
            waiting_on[dependant] -= 1
            if waiting_on[dependant] == 0:
                heapq.heappush(ready, (sort_key(dependant), dependant))
    return ordered


def mainline(power_levels_id: str | None, event_map: Mapping[str, Event]) -> list[str]:
    """[P₀, P₁, …, Pₙ]: a power_levels event, then the one it cites, and so on back."""
    chain: list[str] = []
    seen: set[str] = set()
    current = event_map.get(power_levels_id) if power_levels_id is not None else None
    while current is not None and current.event_id not in seen:
        chain.append(current.event_id)
        seen.add(current.event_id)
        current = power_levels_auth_event(current, event_map)
    return chain


#: The position of an event whose power-levels chain never meets the mainline. The spec's
#: "∞" (older than P₀…Pₙ), written here as below every age index. Synapse agrees; ruma
#: instead ties such events with those based on Pₙ.
NOT_ON_MAINLINE = -1


def mainline_sort(
    event_ids: Iterable[str], power_levels_id: str | None, event_map: Mapping[str, Event]
) -> list[str]:
    """Order events by the mainline of `power_levels_id` (spec "Mainline ordering").

    Positions are stored as age indices (Pₙ, the oldest, is 0; P₀ is n), so "greater
    mainline position sorts first" becomes "smaller age index sorts first". The walk from
    each event up its power-levels chain is memoised, since most events share the chain.
    """
    line = mainline(power_levels_id, event_map)
    position_of_power_levels: dict[str, int] = {
        event_id: age for age, event_id in enumerate(reversed(line))
    }

    def position(event: Event) -> int:
        # The spec starts from e₁, the power_levels event that e cites, not from e itself.
        walked: list[str] = []
        walked_set: set[str] = set()
        current = power_levels_auth_event(event, event_map)
        found = NOT_ON_MAINLINE
        while current is not None:
            known = position_of_power_levels.get(current.event_id)
            if known is not None:
                found = known
                break
            if current.event_id in walked_set:  # a malformed cycle: never meets the mainline
                break
            walked.append(current.event_id)
            walked_set.add(current.event_id)
            current = power_levels_auth_event(current, event_map)
        for event_id in walked:
            position_of_power_levels[event_id] = found
        return found

    keyed = []
    for event_id in event_ids:
        event = event_map.get(event_id)
        if event is not None:
            keyed.append(((position(event), event.origin_server_ts, event_id), event_id))
    keyed.sort()
    return [event_id for _, event_id in keyed]
