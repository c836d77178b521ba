"""Fixtures: every storage test runs once per engine, each on a fresh database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_twisted

from storage.engine import Database, create_database

# `database_config` (a fresh database per engine) comes from tests/conftest.py.


@pytest_twisted.async_yield_fixture
async def database(database_config: dict[str, Any]) -> AsyncIterator[Database]:
    db = create_database(database_config)
    yield db
    await db.close()
