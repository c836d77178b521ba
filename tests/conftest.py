"""Shared fixtures: a real server process per test module, on each storage engine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.databases import ENGINES, drop_database
from tests.support.server import RunningServer, start_test_server


@pytest.fixture(scope="module", params=ENGINES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A running homeserver on a fresh database, shared by one test module."""
    directory = tmp_path_factory.mktemp(f"hs-{request.param}")
    running, database = start_test_server(directory, request.param)
    try:
        yield running
    finally:
        running.stop()
        drop_database(database)
