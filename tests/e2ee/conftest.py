"""Storage-level fixtures for E2EE stores: a fresh, migrated database per test, on each engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeVar

import attrs
import pytest_twisted

from storage.engine import Database, create_database
from storage.migrate import prepare_database

T = TypeVar("T")


@attrs.define
class StoreHost:
    """What a store needs from the HomeServer: the database, and the shared components
    (the stream registry) built once each, as `HomeServer.get` does."""

    db: Database
    _components: dict[type, Any] = attrs.field(factory=dict)

    def get(self, cls: type[T]) -> T:
        if cls not in self._components:
            self._components[cls] = cls(self)  # type: ignore[call-arg]
        return self._components[cls]  # type: ignore[no-any-return]


@pytest_twisted.async_yield_fixture
async def store_host(database_config: dict[str, Any]) -> AsyncIterator[StoreHost]:
    db = create_database(database_config)
    await prepare_database(db)
    yield StoreHost(db)
    await db.close()
