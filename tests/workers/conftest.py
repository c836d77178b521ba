"""Module fixtures the federation tests of worker sets share: the test federation network
(DNS, CA) and a single-process Vignette peer on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.databases import drop_database
from tests.support.federation import FederationNet
from tests.support.server import RunningServer


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FederationNet]:
    network = FederationNet.create(tmp_path_factory.mktemp("fednet"))
    try:
        yield network
    finally:
        network.stop()


@pytest.fixture(scope="module")
def vignette_peer(net: FederationNet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A single-process Vignette on the same network."""
    server, database = net.start_server(tmp_path_factory.mktemp("peer"), "sqlite3",
                                        ip_range_whitelist=["127.0.0.1/32", "::1/128"])
    try:
        yield server
    finally:
        server.stop()
        drop_database(database)
