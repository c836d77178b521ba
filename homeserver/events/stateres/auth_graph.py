"""Walks of the auth-event DAG: auth chains, the auth difference, the conflicted state
subgraph, and the power-event graph that the reverse topological ordering sorts.

Every walk keeps a visited set, so each event is expanded at most once per walk, and the
auth chain of the state that all forks share is walked once per resolution rather than
once per fork. Events missing from the event map are treated as leaves: the caller's
map is the whole world, and a missing event simply has no known ancestors.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

from homeserver.events.event import Event
from homeserver.events.stateres.power import StateKey


def _auth_ids(event_id: str, event_map: Mapping[str, Event]) -> list[str]:
    event = event_map.get(event_id)
    return event.auth_event_ids if event is not None else []


def auth_chain(
    event_ids: Iterable[str],
    event_map: Mapping[str, Event],
    known: Collection[str] = (),
) -> set[str]:
    """The union of the auth chains of `event_ids` (not the events themselves), minus `known`.

    `known` must be closed under auth edges (an auth chain itself): the walk stops at its
    events, since everything behind them is already known.
    """
    chain: set[str] = set()
    stack: list[str] = []
    for event_id in event_ids:
        stack.extend(_auth_ids(event_id, event_map))
    while stack:
        event_id = stack.pop()
        if event_id in chain or event_id in known:
            continue
        chain.add(event_id)
        stack.extend(_auth_ids(event_id, event_map))
    return chain


def auth_difference(
    state_sets: Sequence[Mapping[StateKey, str]],
    unconflicted: Mapping[StateKey, str],
    event_map: Mapping[str, Event],
) -> set[str]:
    """∪Cᵢ − ∩Cᵢ, where Cᵢ is the full auth chain of state set i (spec "Auth difference").

    The unconflicted events are in every set, so their chain U lies in every Cᵢ and never
    in the difference. Writing Cᵢ = U ∪ Dᵢ with Dᵢ disjoint from U, the difference is
    ∪Dᵢ − ∩Dᵢ: only the chains of each set's own (conflicted) events are walked per set.

    As the spec defines it (and ruma agrees), an event's auth chain excludes the event
    itself. Synapse counts each state event in its own set's chain, so an unconflicted
    event that no other event of some set cites is in our difference but not Synapse's;
    it is replayed, and the unconflicted map still wins in step 5.
    """
    shared_chain = auth_chain(unconflicted.values(), event_map)
    own_chains = [
        auth_chain(
            (event_id for key, event_id in state_set.items() if unconflicted.get(key) != event_id),
            event_map,
            known=shared_chain,
        )
        for state_set in state_sets
    ]
    if not own_chains:
        return set()
    union = set().union(*own_chains)
    intersection = set.intersection(*own_chains)
    return union - intersection


def conflicted_state_subgraph(
    conflicted: Collection[str], event_map: Mapping[str, Event]
) -> set[str]:
    """Events on an auth-event path from one conflicted event to another (v2.1, MSC4297).

    An event lies on such a path exactly when a conflicted event reaches it and it reaches
    a conflicted event, along at least one edge in total. One depth-first walk from the
    conflicted events computes, for every event it meets, whether it reaches a conflicted
    event through one or more edges.
    """
    reaches: dict[str, bool] = {}
    reached_by_edge: set[str] = set()
    for start in conflicted:
        if start in reaches:
            continue
        # Iterative post-order walk; `reaches` gets a provisional False while an event is
        # on the stack, so a (malformed) cycle cannot loop forever.
        reaches[start] = False
        stack: list[tuple[str, list[str]]] = [(start, list(_auth_ids(start, event_map)))]
        while stack:
            event_id, pending = stack[-1]
            if pending:
                auth_id = pending.pop()
                reached_by_edge.add(auth_id)
                if auth_id not in reaches:
                    reaches[auth_id] = False
                    stack.append((auth_id, list(_auth_ids(auth_id, event_map))))
                continue
            stack.pop()
            reaches[event_id] = any(
                auth_id in conflicted or reaches.get(auth_id, False)
                for auth_id in _auth_ids(event_id, event_map)
            )
    subgraph = {event_id for event_id, hit in reaches.items() if hit}
    subgraph.update(event_id for event_id in conflicted if event_id in reached_by_edge)
    return subgraph


def power_event_graph(
    power_event_ids: Iterable[str],
    full_conflicted_set: Collection[str],
    event_map: Mapping[str, Event],
) -> dict[str, set[str]]:
    """The power events plus their auth ancestors within the full conflicted set, each
    mapped to its auth events that are in the graph.

    Like Synapse and ruma, the walk only passes through events of the full conflicted
    set, and the edges are direct `auth_events` links between them.
    """
    graph: dict[str, set[str]] = {}
    stack = list(power_event_ids)
    while stack:
        event_id = stack.pop()
        if event_id in graph:
            continue
        edges = {
            auth_id for auth_id in _auth_ids(event_id, event_map) if auth_id in full_conflicted_set
        }
        graph[event_id] = edges
        stack.extend(auth_id for auth_id in edges if auth_id not in graph)
    return graph
