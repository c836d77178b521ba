"""Fixtures: every storage test runs once per engine, each on a fresh database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from storage.engine import Database, create_database
from tests.support.databases import drop_database, fresh_database_config


@pytest.fixture(
    params=[
        pytest.param("sqlite3"),
        pytest.param("psycopg2", marks=pytest.mark.postgres),
    ]
)
def database_config(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    config = fresh_database_config(request.param, tmp_path)
    yield config
    drop_database(config)


@pytest_twisted.async_yield_fixture
async def database(database_config: dict[str, Any]) -> AsyncIterator[Database]:
    db = create_database(database_config)
    yield db
    await db.close()
