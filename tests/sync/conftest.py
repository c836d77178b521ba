"""A server with presence switched on (the default server has it off)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.databases import ENGINES, drop_database
from tests.support.server import RunningServer, start_test_server


@pytest.fixture(scope="module", params=ENGINES)
def presence_server(request: pytest.FixtureRequest,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    directory = tmp_path_factory.mktemp(f"hs-presence-{request.param}")
    running, database = start_test_server(directory, request.param, presence={"enabled": True})
    try:
        yield running
    finally:
        running.stop()
        drop_database(database)
