"""Loading ruma's state-resolution fixtures, and the ways of running them that ruma uses.

The fixtures live in the shared spec folder beside the repository (never copied into
it). See shared/spec/stateres-fixtures/README.md for what each way of running means.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from homeserver.events.event import Event
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion, RoomVersions
from homeserver.events.stateres import StateKey, resolve_state

REPO_ROOT = Path(__file__).resolve().parents[2]

ROOM = "!room:example.com"
ALICE = "@alice:example.com"
BOB = "@bob:example.com"
CAROL = "@carol:example.com"


class RoomBuilder:
    """Builds a small room's events by hand, keyed by readable fake event IDs."""

    def __init__(self, room_version: RoomVersion = RoomVersions.V10) -> None:
        self.room_version = room_version
        #: None while adding a v12 create event, which has no room ID.
        self.room_id: str | None = ROOM
        self.events: dict[str, Event] = {}

    def add(
        self,
        event_id: str,
        event_type: str,
        sender: str,
        *,
        state_key: str = "",
        content: dict[str, Any] | None = None,
        auth: list[str] | None = None,
        ts: int = 0,
        depth: int = 0,
    ) -> str:
        pdu: dict[str, Any] = {
            "event_id": event_id,
            "type": event_type,
            "sender": sender,
            "state_key": state_key,
            "content": content or {},
            "origin_server_ts": ts,
            "depth": depth,
            "prev_events": [],
            "auth_events": auth or [],
        }
        if self.room_id is not None:
            pdu["room_id"] = self.room_id
        self.events[event_id] = Event.from_pdu(pdu, self.room_version, event_id=event_id)
        return event_id


def shared_dir() -> Path:
    """`shared/` sits beside the repository; VIGNETTE_SHARED_DIR overrides it (worktrees)."""
    override = os.environ.get("VIGNETTE_SHARED_DIR")
    return Path(override) if override else REPO_ROOT.parent / "shared"


def fixtures_dir() -> Path:
    path = shared_dir() / "spec" / "stateres-fixtures"
    if not path.is_dir():
        pytest.skip(
            f"state-resolution fixtures not found at {path}: shared/ must sit beside the "
            "repository (or set VIGNETTE_SHARED_DIR)"
        )
    return path


def load_json(relative_path: str) -> Any:
    return json.loads((fixtures_dir() / "fixtures" / relative_path).read_text())


def load_pdu_batches(paths: Sequence[str]) -> list[list[dict[str, Any]]]:
    return [load_json(path) for path in paths]


def room_version_of(batches: Sequence[Sequence[dict[str, Any]]]) -> RoomVersion:
    """The room version named by the create event that opens the first file."""
    create = batches[0][0]
    assert create["type"] == "m.room.create"
    return KNOWN_ROOM_VERSIONS[create["content"]["room_version"]]


def to_events(pdus: Iterable[dict[str, Any]], room_version: RoomVersion) -> list[Event]:
    """Fixture PDUs carry fake readable IDs; use them as given (already authenticated)."""
    return [Event.from_pdu(pdu, room_version, event_id=pdu["event_id"]) for pdu in pdus]


def state_key_of(event: Event) -> StateKey:
    assert event.state_key is not None, f"fixture event {event.event_id} is not a state event"
    return (event.type, event.state_key)


def load_snapshot(test_name: str) -> dict[StateKey, str]:
    """The expected state from an insta snapshot: a YAML header, then a JSON array."""
    text = (fixtures_dir() / "snapshots" / f"{test_name}@resolved_state.snap").read_text()
    _, _, body = text.partition("---\n")
    _, _, body = body.partition("---\n")
    return {(entry["type"], entry["state_key"]): entry["event_id"] for entry in json.loads(body)}


def resolve_by_walking_dag(
    room_version: RoomVersion, events: Sequence[Event]
) -> dict[StateKey, str]:
    """Ruma's "iterative" way: compute the state at each event from its prev_events, then
    resolve the states at the DAG's leaves.

    state_before(E) resolves the states at E's prev events; state_at(E) resolves
    {state_before(E), state_before(E) + E}, which applies E only if it passes auth.
    """
    event_map = {event.event_id: event for event in events}
    children: dict[str, list[str]] = {event_id: [] for event_id in event_map}
    waiting: dict[str, int] = {}
    for event in events:
        prevs = event.prev_event_ids
        waiting[event.event_id] = len(prevs)
        for prev_id in prevs:
            children[prev_id].append(event.event_id)

    ready = [event_id for event_id, n in waiting.items() if n == 0]
    state_at: dict[str, dict[StateKey, str]] = {}
    while ready:
        event_id = ready.pop()
        event = event_map[event_id]
        before = resolve_state(
            room_version, [state_at[prev_id] for prev_id in event.prev_event_ids], event_map
        )
        proposed = {**before, state_key_of(event): event_id}
        state_at[event_id] = resolve_state(room_version, [before, proposed], event_map)
        for child_id in children[event_id]:
            waiting[child_id] -= 1
            if waiting[child_id] == 0:
                ready.append(child_id)

    assert len(state_at) == len(event_map), "every fixture event's prev_events must be known"
    leaves = sorted(event_id for event_id, kids in children.items() if not kids)
    return resolve_state(room_version, [state_at[leaf] for leaf in leaves], event_map)


def resolve_in_batches(
    room_version: RoomVersion, batches: Sequence[Sequence[Event]]
) -> dict[StateKey, str]:
    """Ruma's "batched" way: each batch's events as one-entry state maps, resolved on top
    of the previous batch's result. With a single batch this is the "atomic" way."""
    event_map: dict[str, Event] = {}
    resolved: dict[StateKey, str] | None = None
    for batch in batches:
        event_map.update((event.event_id, event) for event in batch)
        state_sets = [] if resolved is None else [resolved]
        state_sets.extend({state_key_of(event): event.event_id} for event in batch)
        resolved = resolve_state(room_version, state_sets, event_map)
    assert resolved is not None
    return resolved


def load_state_maps(paths: Sequence[str], events: Sequence[Event]) -> list[dict[StateKey, str]]:
    """State-map fixtures are lists of event IDs; key each by its event's type and state key."""
    by_id = {event.event_id: event for event in events}
    return [
        {state_key_of(by_id[event_id]): event_id for event_id in load_json(path)} for path in paths
    ]
