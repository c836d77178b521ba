"""Servers with delayed events (MSC4140) switched on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.databases import ENGINES
from tests.support.server import RunningServer, custom_server

MAX_DELAY_MS = 3_600_000


@pytest.fixture(scope="module", params=ENGINES)
def delayed_server(request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    directory = tmp_path_factory.mktemp(f"hs-delayed-{request.param}")
    with custom_server(directory, request.param, max_event_delay_duration="1h",
                       max_delayed_events_per_user=20) as running:
        yield running
