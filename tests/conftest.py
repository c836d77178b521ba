"""Shared fixtures: a real server process per test module, on each storage engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.databases import ENGINES, drop_database, fresh_database_config
from tests.support.server import RunningServer, custom_server


@pytest.fixture(scope="module", params=ENGINES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A running homeserver on a fresh database, shared by one test module."""
    directory = tmp_path_factory.mktemp(f"hs-{request.param}")
    with custom_server(directory, request.param) as running:
        yield running


@pytest.fixture(params=["sqlite3", pytest.param("psycopg2", marks=pytest.mark.postgres)])
def database_config(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The ``database`` config section of a fresh database, once per engine, dropped afterwards."""
    config = fresh_database_config(request.param, tmp_path)
    yield config
    drop_database(config)
