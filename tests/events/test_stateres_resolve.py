"""resolve_state end to end on hand-built rooms: the v1 algorithm (no fixtures exist for
it), rejected auth events in v2.1, and the event map used only as a lazy Mapping."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from homeserver.events.event import Event
from homeserver.events.room_versions import RoomVersions
from homeserver.events.stateres import StateKey, resolve_state
from tests.events.stateres_support import (
    ALICE,
    BOB,
    CAROL,
    RoomBuilder,
    load_pdu_batches,
    load_snapshot,
    load_state_maps,
    room_version_of,
    to_events,
)

MEMBER = "m.room.member"
POWER_LEVELS = "m.room.power_levels"
PL_KEY: StateKey = (POWER_LEVELS, "")
TOPIC_KEY: StateKey = ("m.room.topic", "")


def v1_room() -> tuple[RoomBuilder, dict[StateKey, str]]:
    """Alice (100) and Bob (50) joined to a public v1 room."""
    room = RoomBuilder(RoomVersions.V1)
    create = room.add("$create:x", "m.room.create", ALICE, content={"creator": ALICE}, depth=1)
    join_alice = room.add(
        "$join-alice:x",
        MEMBER,
        ALICE,
        state_key=ALICE,
        content={"membership": "join"},
        auth=[create],
        depth=2,
    )
    pl = room.add(
        "$pl:x",
        POWER_LEVELS,
        ALICE,
        content={"users": {ALICE: 100, BOB: 50}},
        auth=[create, join_alice],
        depth=3,
    )
    join_rules = room.add(
        "$jr:x",
        "m.room.join_rules",
        ALICE,
        content={"join_rule": "public"},
        auth=[create, join_alice, pl],
        depth=4,
    )
    join_bob = room.add(
        "$join-bob:x",
        MEMBER,
        BOB,
        state_key=BOB,
        content={"membership": "join"},
        auth=[create, pl, join_rules],
        depth=5,
    )
    base = {
        ("m.room.create", ""): create,
        (MEMBER, ALICE): join_alice,
        PL_KEY: pl,
        ("m.room.join_rules", ""): join_rules,
        (MEMBER, BOB): join_bob,
    }
    return room, base


def test_v1_power_levels_take_the_newest_event_the_auth_rules_allow() -> None:
    room, base = v1_room()
    alice_auth = ["$create:x", "$pl:x", "$join-alice:x"]
    bob_auth = ["$create:x", "$pl:x", "$join-bob:x"]
    room.add(
        "$pl-bob:x",
        POWER_LEVELS,
        BOB,
        content={"users": {ALICE: 100, BOB: 50, CAROL: 10}},
        auth=bob_auth,
        depth=6,
    )
    room.add(
        "$pl-alice:x",
        POWER_LEVELS,
        ALICE,
        content={"users": {ALICE: 100, BOB: 0}},
        auth=alice_auth,
        depth=7,
    )
    forks = [{**base, PL_KEY: "$pl-bob:x"}, {**base, PL_KEY: "$pl-alice:x"}]
    resolved = resolve_state(RoomVersions.V1, forks, room.events)
    # Replayed by ascending depth: Bob's, then Alice's, which her level allows.
    assert resolved == {**base, PL_KEY: "$pl-alice:x"}


def test_v1_power_levels_stop_at_the_first_event_the_auth_rules_refuse() -> None:
    room, base = v1_room()
    room.add(
        "$pl-alice:x",
        POWER_LEVELS,
        ALICE,
        content={"users": {ALICE: 100, BOB: 50, CAROL: 20}},
        auth=["$create:x", "$pl:x", "$join-alice:x"],
        depth=6,
    )
    room.add(
        "$pl-bob:x",
        POWER_LEVELS,
        BOB,
        content={"users": {ALICE: 0, BOB: 100}},
        auth=["$create:x", "$pl:x", "$join-bob:x"],
        depth=7,
    )
    forks = [{**base, PL_KEY: "$pl-alice:x"}, {**base, PL_KEY: "$pl-bob:x"}]
    # Bob (50) may not raise himself to 100, so Alice's older event stays.
    assert resolve_state(RoomVersions.V1, forks, room.events)[PL_KEY] == "$pl-alice:x"


def test_v1_other_conflicts_take_the_deepest_event_that_passes_auth() -> None:
    room, base = v1_room()
    room.add("$topic-bob:x", "m.room.topic", BOB, auth=["$create:x", "$pl:x"], depth=8)
    # Carol never joined: her deeper topic fails auth.
    room.add("$topic-carol:x", "m.room.topic", CAROL, auth=["$create:x", "$pl:x"], depth=9)
    room.add("$topic-alice:x", "m.room.topic", ALICE, auth=["$create:x", "$pl:x"], depth=10)
    bob_vs_carol = [{**base, TOPIC_KEY: "$topic-bob:x"}, {**base, TOPIC_KEY: "$topic-carol:x"}]
    assert resolve_state(RoomVersions.V1, bob_vs_carol, room.events)[TOPIC_KEY] == "$topic-bob:x"
    bob_vs_alice = [{**base, TOPIC_KEY: "$topic-bob:x"}, {**base, TOPIC_KEY: "$topic-alice:x"}]
    assert resolve_state(RoomVersions.V1, bob_vs_alice, room.events)[TOPIC_KEY] == "$topic-alice:x"


def test_v1_a_key_held_by_only_some_forks_is_not_a_conflict() -> None:
    room, base = v1_room()
    room.add("$topic-carol:x", "m.room.topic", CAROL, auth=["$create:x", "$pl:x"], depth=9)
    forks = [{**base, TOPIC_KEY: "$topic-carol:x"}, base]
    # v1 keeps it unchecked (v2 would treat the key as conflicted and reject Carol's topic).
    assert resolve_state(RoomVersions.V1, forks, room.events)[TOPIC_KEY] == "$topic-carol:x"
    assert TOPIC_KEY not in resolve_state(RoomVersions.V2, forks, room.events)


def v12_room_with_a_rejected_join() -> tuple[RoomBuilder, dict[StateKey, str]]:
    room = RoomBuilder(RoomVersions.V12)
    room.room_id = None
    create = room.add("$create", "m.room.create", ALICE, content={"room_version": "12"})
    room.room_id = "!create"
    join_alice = room.add(
        "$join-alice", MEMBER, ALICE, state_key=ALICE, content={"membership": "join"}
    )
    pl = room.add("$pl", POWER_LEVELS, ALICE, content={"state_default": 0})
    join_rules = room.add(
        "$jr", "m.room.join_rules", ALICE, content={"join_rule": "public"}, auth=[join_alice, pl]
    )
    # Bob's join, later than the topics below, that this server rejected on receipt.
    room.add(
        "$join-bob",
        MEMBER,
        BOB,
        state_key=BOB,
        content={"membership": "join"},
        auth=[pl, join_rules],
        ts=30,
    )
    room.add("$topic-alice", "m.room.topic", ALICE, auth=[pl, join_alice], ts=10)
    room.add("$topic-bob", "m.room.topic", BOB, auth=[pl, "$join-bob"], ts=20)
    base = {
        ("m.room.create", ""): create,
        (MEMBER, ALICE): join_alice,
        PL_KEY: pl,
        ("m.room.join_rules", ""): join_rules,
    }
    return room, base


def test_rejected_auth_events_are_not_used_by_the_iterative_auth_checks() -> None:
    room, base = v12_room_with_a_rejected_join()
    forks = [{**base, TOPIC_KEY: "$topic-alice"}, {**base, TOPIC_KEY: "$topic-bob"}]
    # Bob's topic is checked before his join is in the state, so it leans on its own
    # auth events: allowed through his join, refused once that join is known rejected.
    trusting = resolve_state(RoomVersions.V12, forks, room.events)
    assert trusting[TOPIC_KEY] == "$topic-bob"
    careful = resolve_state(RoomVersions.V12, forks, room.events, rejected_event_ids={"$join-bob"})
    assert careful[TOPIC_KEY] == "$topic-alice"


class LazyEventMap(Mapping[str, Event]):
    """An event store that answers lookups one at a time and refuses to be enumerated."""

    def __init__(self, events: Mapping[str, Event]) -> None:
        self._events = events
        self.fetched: set[str] = set()

    def __getitem__(self, event_id: str) -> Event:
        self.fetched.add(event_id)
        return self._events[event_id]

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("state resolution must not enumerate the event map")

    def __len__(self) -> int:
        raise AssertionError("state resolution must not size the event map")


def test_event_map_is_only_looked_up_by_id() -> None:
    batches = load_pdu_batches(["MSC4297-problem-B/pdus-v12.json"])
    room_version = room_version_of(batches)
    events = to_events(batches[0], room_version)
    state_maps = load_state_maps(
        ["MSC4297-problem-B/state-eve.json", "MSC4297-problem-B/state-zara.json"], events
    )
    lazy = LazyEventMap({event.event_id: event for event in events})
    resolved = resolve_state(room_version, state_maps, lazy)
    assert resolved == load_snapshot("msc4297_problem_b_state_res_v2_1")
    assert lazy.fetched <= {event.event_id for event in events}


def test_v1_uses_the_event_map_lazily_too() -> None:
    room, base = v1_room()
    room.add("$topic-alice:x", "m.room.topic", ALICE, auth=["$create:x", "$pl:x"], depth=10)
    room.add("$topic-bob:x", "m.room.topic", BOB, auth=["$create:x", "$pl:x"], depth=8)
    forks = [{**base, TOPIC_KEY: "$topic-bob:x"}, {**base, TOPIC_KEY: "$topic-alice:x"}]
    resolved = resolve_state(RoomVersions.V1, forks, LazyEventMap(room.events))
    assert resolved[TOPIC_KEY] == "$topic-alice:x"


def test_no_forks_or_one_fork_need_no_resolution() -> None:
    assert resolve_state(RoomVersions.V12, [], {}) == {}
    only = {("m.room.create", ""): "$create"}
    assert resolve_state(RoomVersions.V12, [only], {}) == only
