"""ruma's state-resolution fixtures: every case must resolve to the snapshot's state.

Batch fixtures are run three ways (walking the DAG, file by file, all at once) and each
must equal the snapshot; the MSC4297 cases resolve their contrived fork states directly
(and, for v2.1, also by walking their DAGs).
"""

from __future__ import annotations

import random

import pytest

from homeserver.events.stateres import resolve_state
from tests.events.stateres_support import (
    load_pdu_batches,
    load_snapshot,
    load_state_maps,
    resolve_by_walking_dag,
    resolve_in_batches,
    room_version_of,
    to_events,
)

BATCH_CASES = {
    "minimal_private_chat": ["bootstrap-private-chat.json"],
    "minimal_public_chat": ["bootstrap-public-chat.json"],
    "origin_server_ts_tiebreak": ["bootstrap-private-chat.json", "origin-server-ts-tiebreak.json"],
    "ban_vs_power_levels": [
        "bootstrap-public-chat.json",
        "ban-vs-power-levels-alice.json",
        "ban-vs-power-levels-bob.json",
    ],
    "topic_vs_power_levels": [
        "bootstrap-public-chat.json",
        "topic-vs-power-levels-alice.json",
        "topic-vs-power-levels-bob.json",
    ],
    "power_levels_admin_vs_mod": [
        "bootstrap-public-chat.json",
        "power-levels-admin-vs-mod-alice.json",
        "power-levels-admin-vs-mod-bob.json",
    ],
    "topic_vs_ban": [
        "bootstrap-public-chat.json",
        "topic-vs-ban-common.json",
        "topic-vs-ban-alice.json",
        "topic-vs-ban-bob.json",
    ],
    "join_rules_vs_join": [
        "bootstrap-public-chat.json",
        "join-rules-vs-join-common.json",
        "join-rules-vs-join-alice.json",
        "join-rules-vs-join-ella.json",
    ],
    "concurrent_joins": [
        "bootstrap-public-chat.json",
        "concurrent-joins-charlie.json",
        "concurrent-joins-ella.json",
    ],
    # Beyond ruma: walking the honest MSC4297 DAGs in a v12 room reaches the same state
    # as resolving the contrived forks with v2.1. (Not so for the v11 PDUs: their v2.0
    # snapshots record the state reset that only the contrived forks cause.)
    "msc4297_problem_a_state_res_v2_1": ["MSC4297-problem-A/pdus-v12.json"],
    "msc4297_problem_b_state_res_v2_1": ["MSC4297-problem-B/pdus-v12.json"],
}

STATE_MAP_CASES = {
    "msc4297_problem_a_state_res_v2_0": (
        ["MSC4297-problem-A/state-bob.json", "MSC4297-problem-A/state-charlie.json"],
        "MSC4297-problem-A/pdus-v11.json",
    ),
    "msc4297_problem_a_state_res_v2_1": (
        ["MSC4297-problem-A/state-bob.json", "MSC4297-problem-A/state-charlie.json"],
        "MSC4297-problem-A/pdus-v12.json",
    ),
    "msc4297_problem_b_state_res_v2_0": (
        ["MSC4297-problem-B/state-eve.json", "MSC4297-problem-B/state-zara.json"],
        "MSC4297-problem-B/pdus-v11.json",
    ),
    "msc4297_problem_b_state_res_v2_1": (
        ["MSC4297-problem-B/state-eve.json", "MSC4297-problem-B/state-zara.json"],
        "MSC4297-problem-B/pdus-v12.json",
    ),
}


@pytest.mark.parametrize("name", sorted(BATCH_CASES))
def test_walking_the_dag_matches_snapshot(name: str) -> None:
    batches = load_pdu_batches(BATCH_CASES[name])
    room_version = room_version_of(batches)
    events = to_events((pdu for batch in batches for pdu in batch), room_version)
    assert resolve_by_walking_dag(room_version, events) == load_snapshot(name)


@pytest.mark.parametrize("name", sorted(BATCH_CASES))
def test_file_by_file_matches_snapshot(name: str) -> None:
    batches = load_pdu_batches(BATCH_CASES[name])
    room_version = room_version_of(batches)
    event_batches = [to_events(batch, room_version) for batch in batches]
    assert resolve_in_batches(room_version, event_batches) == load_snapshot(name)


@pytest.mark.parametrize("name", sorted(BATCH_CASES))
def test_all_at_once_matches_snapshot_in_any_input_order(name: str) -> None:
    batches = load_pdu_batches(BATCH_CASES[name])
    room_version = room_version_of(batches)
    events = to_events((pdu for batch in batches for pdu in batch), room_version)
    expected = load_snapshot(name)
    assert resolve_in_batches(room_version, [events]) == expected
    # The result must not depend on the order the forks are given in.
    assert resolve_in_batches(room_version, [events[::-1]]) == expected
    shuffled = list(events)
    random.Random(name).shuffle(shuffled)
    assert resolve_in_batches(room_version, [shuffled]) == expected


@pytest.mark.parametrize("name", sorted(STATE_MAP_CASES))
def test_state_maps_match_snapshot(name: str) -> None:
    state_map_paths, pdus_path = STATE_MAP_CASES[name]
    batches = load_pdu_batches([pdus_path])
    room_version = room_version_of(batches)
    events = to_events(batches[0], room_version)
    state_maps = load_state_maps(state_map_paths, events)
    event_map = {event.event_id: event for event in events}
    assert resolve_state(room_version, state_maps, event_map) == load_snapshot(name)


def test_state_res_version_follows_the_fixture_room_version() -> None:
    """v2.0 and v2.1 cases must really differ, or the MSC4297 cases prove nothing."""
    for name in ("msc4297_problem_a", "msc4297_problem_b"):
        assert load_snapshot(f"{name}_state_res_v2_0") != load_snapshot(f"{name}_state_res_v2_1")
