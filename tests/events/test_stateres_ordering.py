"""Hand-built checks of the pieces of state resolution v2: the power ordering and its
tie-breaks, mainline ordering, the conflicted split, the auth difference and the
conflicted state subgraph."""

from __future__ import annotations

from homeserver.events.room_versions import RoomVersions
from homeserver.events.stateres.auth_graph import (
    auth_difference,
    conflicted_state_subgraph,
    power_event_graph,
)
from homeserver.events.stateres.ordering import (
    mainline_sort,
    power_sort_key,
    reverse_topological_power_sort,
)
from homeserver.events.stateres.power import is_power_event, sender_power_level
from homeserver.events.stateres.v2 import split_conflicted
from tests.events.stateres_support import ALICE, BOB, CAROL, RoomBuilder


def base_room() -> RoomBuilder:
    room = RoomBuilder()
    room.add("$create", "m.room.create", ALICE, content={"creator": ALICE, "room_version": "10"})
    room.add(
        "$join-alice",
        "m.room.member",
        ALICE,
        state_key=ALICE,
        content={"membership": "join"},
        auth=["$create"],
    )
    room.add(
        "$pl1",
        "m.room.power_levels",
        ALICE,
        content={"users": {ALICE: 100, BOB: 50}},
        auth=["$create", "$join-alice"],
        ts=1,
    )
    return room


def test_power_ordering_prefers_higher_sender_power_then_earlier_ts_then_smaller_id() -> None:
    room = base_room()
    auth = ["$create", "$join-alice", "$pl1"]
    room.add("$b-topic", "m.room.join_rules", BOB, content={"join_rule": "public"}, auth=auth, ts=5)
    room.add(
        "$a-late", "m.room.join_rules", ALICE, content={"join_rule": "invite"}, auth=auth, ts=9
    )
    room.add(
        "$c-early", "m.room.join_rules", CAROL, content={"join_rule": "invite"}, auth=auth, ts=1
    )
    room.add("$c-same-ts-z", "m.room.join_rules", CAROL, content={}, auth=auth, ts=7)
    room.add("$c-same-ts-a", "m.room.join_rules", CAROL, content={}, auth=auth, ts=7)
    graph = {
        event_id: set()
        for event_id in ("$b-topic", "$a-late", "$c-early", "$c-same-ts-z", "$c-same-ts-a")
    }
    ordered = reverse_topological_power_sort(graph, power_sort_key(room.events))
    # Alice (100) before Bob (50) before Carol (0); Carol's by ts, then by event ID.
    assert ordered == ["$a-late", "$b-topic", "$c-early", "$c-same-ts-a", "$c-same-ts-z"]


def test_power_ordering_never_puts_an_event_before_its_auth_events() -> None:
    room = base_room()
    # Carol's low-power event is an auth event of Alice's: it must still come first.
    room.add("$carol-pl", "m.room.power_levels", CAROL, content={}, auth=["$create"], ts=50)
    room.add(
        "$alice-jr", "m.room.join_rules", ALICE, content={}, auth=["$create", "$carol-pl"], ts=0
    )
    room.add("$bob-jr", "m.room.join_rules", BOB, content={}, auth=["$create", "$pl1"], ts=0)
    full = {"$carol-pl", "$alice-jr", "$bob-jr"}
    graph = power_event_graph(["$alice-jr", "$bob-jr"], full, room.events)
    assert graph == {"$alice-jr": {"$carol-pl"}, "$bob-jr": set(), "$carol-pl": set()}
    ordered = reverse_topological_power_sort(graph, power_sort_key(room.events))
    # Bob (50 by $pl1) beats Carol (0, no users map), and Alice waits for Carol's event.
    assert ordered == ["$bob-jr", "$carol-pl", "$alice-jr"]


def test_sender_power_level_reads_the_cited_power_levels_and_creator_defaults() -> None:
    room = base_room()
    room.add("$bob-with-pl", "m.room.topic", BOB, auth=["$create", "$pl1"])
    room.add("$carol-with-pl", "m.room.topic", CAROL, auth=["$create", "$pl1"])
    room.add("$alice-no-pl", "m.room.topic", ALICE, auth=["$create"])
    room.add("$bob-no-pl", "m.room.topic", BOB, auth=["$create"])
    level = {
        event_id: sender_power_level(room.events[event_id], room.events)
        for event_id in ("$bob-with-pl", "$carol-with-pl", "$alice-no-pl", "$bob-no-pl")
    }
    assert level == {"$bob-with-pl": 50, "$carol-with-pl": 0, "$alice-no-pl": 100, "$bob-no-pl": 0}


def test_v12_creators_outrank_everyone_in_the_power_ordering() -> None:
    room = RoomBuilder(RoomVersions.V12)
    room.room_id = None
    create = room.add(
        "$create",
        "m.room.create",
        ALICE,
        content={"room_version": "12", "additional_creators": [CAROL]},
    )
    # v12 room IDs name the create event; nothing cites it in auth_events.
    room.room_id = "!" + create[1:]
    pl = room.add("$pl", "m.room.power_levels", ALICE, content={"users": {BOB: 99}}, ts=1)
    for event_id, sender in (("$bob-jr", BOB), ("$carol-jr", CAROL)):
        room.add(event_id, "m.room.join_rules", sender, auth=[pl], ts=5)
    assert sender_power_level(room.events["$carol-jr"], room.events) == float("inf")
    assert sender_power_level(room.events["$bob-jr"], room.events) == 99
    ordered = reverse_topological_power_sort(
        {"$bob-jr": set(), "$carol-jr": set()}, power_sort_key(room.events)
    )
    assert ordered == ["$carol-jr", "$bob-jr"]


def mainline_room() -> RoomBuilder:
    """$pl1 <- $pl2 <- $pl3 is the mainline; $pl-side forks off $pl1."""
    room = base_room()
    room.add("$pl2", "m.room.power_levels", ALICE, content={}, auth=["$create", "$pl1"], ts=2)
    room.add("$pl3", "m.room.power_levels", ALICE, content={}, auth=["$create", "$pl2"], ts=3)
    room.add("$pl-side", "m.room.power_levels", BOB, content={}, auth=["$create", "$pl1"], ts=4)
    return room


def test_mainline_ordering_puts_events_based_on_older_power_levels_first() -> None:
    room = mainline_room()
    room.add("$on-pl3", "m.room.topic", ALICE, auth=["$pl3"], ts=1)
    room.add("$on-pl2", "m.room.topic", ALICE, auth=["$pl2"], ts=2)
    room.add("$on-pl1", "m.room.topic", ALICE, auth=["$pl1"], ts=3)
    room.add("$on-side", "m.room.topic", BOB, auth=["$pl-side"], ts=0)  # meets the line at $pl1
    room.add("$no-pl", "m.room.topic", ALICE, auth=["$create"], ts=99)  # never meets it: ∞
    ordered = mainline_sort(
        ["$on-pl3", "$on-pl2", "$on-pl1", "$on-side", "$no-pl"], "$pl3", room.events
    )
    assert ordered == ["$no-pl", "$on-side", "$on-pl1", "$on-pl2", "$on-pl3"]


def test_mainline_ordering_ties_break_by_ts_then_event_id() -> None:
    room = mainline_room()
    room.add("$z-early", "m.room.topic", ALICE, auth=["$pl2"], ts=1)
    room.add("$b-late", "m.room.topic", ALICE, auth=["$pl2"], ts=5)
    room.add("$a-late", "m.room.topic", ALICE, auth=["$pl2"], ts=5)
    ordered = mainline_sort(["$b-late", "$a-late", "$z-early"], "$pl3", room.events)
    assert ordered == ["$z-early", "$a-late", "$b-late"]


def test_mainline_without_power_levels_orders_by_ts_only() -> None:
    room = mainline_room()
    room.add("$x", "m.room.topic", ALICE, auth=["$pl3"], ts=2)
    room.add("$y", "m.room.topic", ALICE, auth=["$pl1"], ts=1)
    assert mainline_sort(["$x", "$y"], None, room.events) == ["$y", "$x"]


def test_power_events_are_power_levels_join_rules_create_and_kicks_or_bans() -> None:
    room = base_room()
    room.add("$kick", "m.room.member", ALICE, state_key=BOB, content={"membership": "leave"})
    room.add("$ban", "m.room.member", ALICE, state_key=BOB, content={"membership": "ban"})
    room.add("$leave", "m.room.member", BOB, state_key=BOB, content={"membership": "leave"})
    room.add("$topic", "m.room.topic", ALICE)
    power = {event_id for event_id, event in room.events.items() if is_power_event(event)}
    assert power == {"$create", "$pl1", "$kick", "$ban"}


def test_split_treats_a_key_missing_from_one_set_as_conflicted() -> None:
    unconflicted, conflicted = split_conflicted(
        [
            {("a", ""): "$1", ("b", ""): "$2", ("c", ""): "$3"},
            {("a", ""): "$1", ("b", ""): "$9"},
        ]
    )
    assert unconflicted == {("a", ""): "$1"}
    assert conflicted == {("b", ""): {"$2", "$9"}, ("c", ""): {"$3"}}


def test_auth_difference_is_union_minus_intersection_of_the_sets_auth_chains() -> None:
    room = mainline_room()
    room.add("$t1", "m.room.topic", ALICE, auth=["$create", "$pl3"])
    room.add("$t2", "m.room.topic", BOB, auth=["$create", "$pl-side"])
    pl_key, topic_key = ("m.room.power_levels", ""), ("m.room.topic", "")
    sets = [{pl_key: "$pl1", topic_key: "$t1"}, {pl_key: "$pl1", topic_key: "$t2"}]
    unconflicted, _ = split_conflicted(sets)
    # Chains: {create, join-alice, pl1, pl2, pl3} and {create, join-alice, pl1, pl-side}.
    assert auth_difference(sets, unconflicted, room.events) == {"$pl2", "$pl3", "$pl-side"}


def test_conflicted_state_subgraph_holds_events_between_conflicted_events() -> None:
    room = mainline_room()
    # $pl3 and $pl1 conflict: $pl2 lies between them; $create and $join-alice lie beyond
    # $pl1 and reach no conflicted event, so they are not in the subgraph.
    subgraph = conflicted_state_subgraph({"$pl3", "$pl1"}, room.events)
    assert subgraph == {"$pl3", "$pl2", "$pl1"}
    # A lone conflicted event, with no other conflicted event below it, is no path.
    assert conflicted_state_subgraph({"$pl3", "$pl-side"}, room.events) == set()
