"""Storage-level fixtures for E2EE stores: a fresh, migrated database per test, on each engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest_twisted

from storage.engine import Database, create_database
from storage.migrate import prepare_database


@attrs.define
class StoreHost:
    """What a store needs from the HomeServer: just the database."""

    db: Database


@pytest_twisted.async_yield_fixture
async def store_host(database_config: dict[str, Any]) -> AsyncIterator[StoreHost]:
    db = create_database(database_config)
    await prepare_database(db)
    yield StoreHost(db)
    await db.close()
