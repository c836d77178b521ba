"""ruma's state-resolution fixtures fed through the event pipeline, not only the kernel.

Each case's PDUs go to a fresh homeserver's `submit_remote`, as a federation receiver
would hand them in (they carry no signatures: the receiver's checks come before the
pipeline). The room's current state, as stored, must equal the snapshot: the pipeline
computed the state at every event from its prev_events, resolved the forks, and kept
the current state as the resolution over the forward extremities.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_twisted

from homeserver.handlers.rooms.room_state import RoomStateHandler
from homeserver.pipeline import EventPipeline, Outcome
from tests.events.stateres_support import (
    load_pdu_batches,
    load_snapshot,
    room_version_of,
    to_events,
)
from tests.events.test_stateres_fixtures import BATCH_CASES
from tests.support.databases import ENGINES
from tests.support.harness import start_server


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", sorted(BATCH_CASES))
@pytest_twisted.ensureDeferred
async def test_fixtures_through_the_pipeline_give_their_snapshots(name: str, engine: str,
                                                                  tmp_path: Path) -> None:
    # A server per case: the fixtures reuse their readable event IDs across cases.
    server = await start_server(tmp_path, engine, "example.com")
    try:
        batches = load_pdu_batches(BATCH_CASES[name])
        room_version = room_version_of(batches)
        events = to_events((pdu for batch in batches for pdu in batch), room_version)
        room_id = events[1].room_id
        results = await server.hs.get(EventPipeline).submit_remote(room_id, events, "example.com")
        assert {r.outcome for r in results} <= {Outcome.ACCEPTED, Outcome.REJECTED, Outcome.SOFT_FAILED}, results
        state = await server.hs.get(RoomStateHandler).get_current_state_ids(room_id)
        assert state == load_snapshot(name)
    finally:
        await server.stop()
