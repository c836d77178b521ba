"""A server per module and engine, with its database config at hand (tests read the rows)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from tests.support.databases import ENGINES, drop_database
from tests.support.server import RunningServer, start_test_server


@attrs.frozen
class ExpiryServer:
    server: RunningServer
    database: dict[str, Any]

    @property
    def base_url(self) -> str:
        return self.server.base_url


@pytest.fixture(scope="module", params=ENGINES)
def expiry_server(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExpiryServer]:
    overrides = getattr(request.module, "SERVER_CONFIG", {})
    running, database = start_test_server(tmp_path_factory.mktemp(f"expiry-{request.param}"), request.param,
                                          max_event_delay_duration="1h", **overrides)
    try:
        yield ExpiryServer(running, database)
    finally:
        running.stop()
        drop_database(database)
