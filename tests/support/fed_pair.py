"""Two Vignette servers on the federation test network, the fixture most two-server tests start
from (``pair`` in tests/federation/conftest.py; a module sets ``PAIR_CONFIG`` for extra config keys
and ``PAIR_PREFIX`` for its directory names)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import pytest

from tests.support.databases import drop_database
from tests.support.federation import FederationNet, unique_label
from tests.support.server import RunningServer


@attrs.define
class Pair:
    a: RunningServer
    b: RunningServer


@contextmanager
def started_pair(fednet: FederationNet, tmp_path_factory: pytest.TempPathFactory, engine: str,
                 prefix: str = "pair", **overrides: Any) -> Iterator[Pair]:
    """Start A and B (each with its own database), stop both and drop their databases after."""
    started: list[tuple[RunningServer, Any]] = []
    try:
        for label in ("a", "b"):
            started.append(fednet.start_server(tmp_path_factory.mktemp(f"{prefix}-{label}-{engine}"), engine,
                                               unique_label(f"{prefix}{label}"), **overrides))
        yield Pair(started[0][0], started[1][0])
    finally:
        for server, database in started:
            server.stop()
            drop_database(database)
