"""A real HomeServer in the test's own process (stores and handlers called directly), on a fresh
database of each engine: the config fixture's body, start-up, and the `hs` fixture's body."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from twisted.internet import reactor

from homeserver.app import HomeServer
from homeserver.config import load_config
from tests.support.databases import drop_database, fresh_database_config
from tests.support.server import write_config


def config_on_fresh_database(engine: str, tmp_path: Path, **config: Any) -> Iterator[Path]:
    """A config file on a new database of ``engine``, dropped afterwards (a fixture's generator)."""
    database = fresh_database_config(engine, tmp_path)
    yield write_config(tmp_path, database, **config)
    drop_database(database)


async def start(config_path: Path) -> HomeServer:
    """Set up (not listening): enough for stores and handlers."""
    homeserver = HomeServer(load_config(str(config_path)), reactor)
    await homeserver.setup()
    return homeserver


async def running(config_path: Path) -> AsyncIterator[HomeServer]:
    """The `hs` fixture's body: started for the test, shut down after it."""
    homeserver = await start(config_path)
    yield homeserver
    await homeserver.shutdown()
