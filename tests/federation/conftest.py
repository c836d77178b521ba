"""Fixtures for federation tests: the network (test CA + DNS server) and federating servers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.client import Client
from tests.support.databases import ENGINES, drop_database
from tests.support.fed_pair import Pair, started_pair
from tests.support.fed_rooms import PeerRoom
from tests.support.federation import FederationNet, ScriptedPeer
from tests.support.rooms import new_user
from tests.support.server import RunningServer
from tests.support.synapse_server import SynapseServer


@pytest.fixture(scope="session")
def fednet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FederationNet]:
    net = FederationNet.create(tmp_path_factory.mktemp("fednet"))
    try:
        yield net
    finally:
        net.stop()


@pytest.fixture(scope="module", params=ENGINES)
def fed_server(request: pytest.FixtureRequest, fednet: FederationNet,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A Vignette server on the test network; a module may set ``FED_SERVER_CONFIG`` for extra keys."""
    overrides = getattr(request.module, "FED_SERVER_CONFIG", {})
    server, database = fednet.start_server(tmp_path_factory.mktemp(f"fed-{request.param}"), request.param,
                                           **overrides)
    try:
        yield server
    finally:
        server.stop()
        drop_database(database)


@pytest.fixture(scope="module", params=ENGINES)
def pair(request: pytest.FixtureRequest, fednet: FederationNet,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Two Vignette servers (tests/support/fed_pair.py); a module may set ``PAIR_CONFIG``."""
    overrides = getattr(request.module, "PAIR_CONFIG", {})
    prefix = getattr(request.module, "PAIR_PREFIX", "pair")
    with started_pair(fednet, tmp_path_factory, request.param, prefix, **overrides) as started:
        yield started


@pytest.fixture(scope="module")
def synapse(fednet: FederationNet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapseServer]:
    """A real Synapse (matrix-synapse from PyPI) on the test network, one per module."""
    server = SynapseServer.start(tmp_path_factory.mktemp("synapse"), fednet.ca)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def peer(fednet: FederationNet) -> Iterator[ScriptedPeer]:
    scripted = ScriptedPeer(fednet)
    try:
        yield scripted
    finally:
        scripted.stop()


@pytest.fixture
def owner(fed_server: RunningServer) -> Client:
    """A local user of ``fed_server`` (who creates the rooms the scripted peer joins)."""
    return new_user(fed_server.base_url)


@pytest.fixture
def room(peer: ScriptedPeer, fed_server: RunningServer, owner: Client) -> PeerRoom:
    """A room of ``owner``'s that the scripted peer takes part in (tests/support/fed_rooms.py)."""
    return PeerRoom.create(peer, fed_server, owner)
