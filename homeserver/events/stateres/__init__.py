"""State resolution: given the room states of several forks, compute the one state after them.

Pure and synchronous: the caller supplies every event the state sets and their auth
chains reference (a lazy Mapping is fine; only `get`/`[]` are used), and gets back a new
state map. The algorithm is chosen by the room version: v1 for room version 1, v2 for
2-11, v2.1 (MSC4297) for 12.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence

from homeserver.events.event import Event
from homeserver.events.room_versions import RoomVersion, StateResAlgorithm
from homeserver.events.stateres.power import StateKey
from homeserver.events.stateres.v1 import resolve_v1
from homeserver.events.stateres.v2 import resolve_v2

__all__ = ["StateKey", "resolve_state"]


def resolve_state(
    room_version: RoomVersion,
    state_sets: Sequence[Mapping[StateKey, str]],
    event_map: Mapping[str, Event],
    *,
    rejected_event_ids: Container[str] = frozenset(),
) -> dict[StateKey, str]:
    """Resolve `state_sets` (each a map of (type, state_key) to event ID) into one state map.

    `rejected_event_ids` names events that were rejected on receipt; v2 does not use them
    as auth events during the iterative auth checks, as the spec requires.
    """
    if not state_sets:
        return {}
    if len(state_sets) == 1:
        return dict(state_sets[0])
    if room_version.state_res is StateResAlgorithm.V1:
        return resolve_v1(state_sets, event_map)
    return resolve_v2(room_version, state_sets, event_map, rejected_event_ids)
