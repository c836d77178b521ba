"""The order remote events are processed in: parents (prev and auth events) before children."""

from __future__ import annotations

import random

from homeserver.events.event import Event
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.pipeline.remote import order_by_prev_events
from homeserver.pipeline.types import RemoteEvent

VERSION = KNOWN_ROOM_VERSIONS["10"]


def event(number: int, prev: list[int], auth: list[int]) -> RemoteEvent:
    pdu = {"type": "m.room.member", "room_id": "!r:hs", "sender": "@u:hs", "content": {},
           "prev_events": [f"$e{n}" for n in prev], "auth_events": [f"$e{n}" for n in auth]}
    return RemoteEvent(Event(pdu=pdu, event_id=f"$e{number}", room_version=VERSION))


def test_a_chain_deeper_than_the_recursion_limit_is_ordered() -> None:
    # A join to a room of thousands brings an auth chain that deep (each member event cites the last).
    depth = 5000
    chain = [event(0, [], [])] + [event(n, [n - 1], [n - 1, 0]) for n in range(1, depth)]
    shuffled = list(reversed(chain))
    ordered = order_by_prev_events(shuffled)
    assert [e.event.event_id for e in ordered] == [e.event.event_id for e in chain]


def test_every_parent_comes_first_and_nothing_is_lost_or_repeated() -> None:
    rng = random.Random(7)
    events = [event(0, [], [])]
    for n in range(1, 300):
        events.append(event(n, rng.sample(range(n), min(n, 2)), rng.sample(range(n), min(n, 3))))
    events.append(event(300, [999], [0]))  # a parent outside the batch is simply not there
    cycle = [event(400, [401], []), event(401, [400], [])]  # malformed: still each placed once
    batch = events + cycle
    rng.shuffle(batch)
    ordered = order_by_prev_events(batch)
    ids = [e.event.event_id for e in ordered]
    assert sorted(ids) == sorted(e.event.event_id for e in batch)
    position = {event_id: i for i, event_id in enumerate(ids)}
    for item in events:
        for parent in (*item.event.prev_event_ids, *item.event.auth_event_ids):
            if parent in position:
                assert position[parent] < position[item.event.event_id]
