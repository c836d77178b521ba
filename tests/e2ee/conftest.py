"""Storage-level fixtures for E2EE stores: a fresh, migrated database per test, on each engine."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_twisted

from storage.engine import Database, create_database
from storage.migrate import prepare_database
from tests.support.databases import drop_database, fresh_database_config


@attrs.define
class StoreHost:
    """What a store needs from the HomeServer: just the database."""

    db: Database


@pytest.fixture(params=["sqlite3", pytest.param("psycopg2", marks=pytest.mark.postgres)])
def e2ee_database_config(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    config = fresh_database_config(request.param, tmp_path)
    yield config
    drop_database(config)


@pytest_twisted.async_yield_fixture
async def store_host(e2ee_database_config: dict[str, Any]) -> AsyncIterator[StoreHost]:
    db = create_database(e2ee_database_config)
    await prepare_database(db)
    yield StoreHost(db)
    await db.close()
