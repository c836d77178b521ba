"""Servers with non-default account settings, each on both storage engines."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.accounts import custom_server
from tests.support.databases import ENGINES
from tests.support.server import RunningServer

RATE_LIMITS_ON = {
    "rc_login": {"address": {"per_second": 0.01, "burst_count": 3},
                 "account": {"per_second": 0.01, "burst_count": 3},
                 "failed_attempts": {"per_second": 0.01, "burst_count": 2}},
    "rc_registration": {"per_second": 0.01, "burst_count": 2},
}


@pytest.fixture(scope="module", params=ENGINES)
def closed_server(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Open registration off, tokens required, guests allowed."""
    directory = tmp_path_factory.mktemp(f"hs-closed-{request.param}")
    with custom_server(directory, request.param, enable_registration=False,
                       allow_guest_access=True) as running:
        yield running


@pytest.fixture(scope="module", params=ENGINES)
def token_server(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    directory = tmp_path_factory.mktemp(f"hs-token-{request.param}")
    with custom_server(directory, request.param, registration_requires_token=True) as running:
        yield running


@pytest.fixture(scope="module", params=ENGINES)
def limited_server(request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Login and registration rate limits on, with small bursts."""
    directory = tmp_path_factory.mktemp(f"hs-limited-{request.param}")
    with custom_server(directory, request.param, **RATE_LIMITS_ON) as running:
        yield running
