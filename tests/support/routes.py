"""Every route the server answers, read from the real router, and the spec's JSON-body operations.

Tests that must cover "every endpoint" walk these instead of a hand-kept list, so a
route added later is covered without anyone remembering to add it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from twisted.internet import reactor

from homeserver.app import HomeServer
from homeserver.config import load_config
from tests.support.databases import drop_database, fresh_database_config
from tests.support.server import write_config

SPEC = Path(os.environ.get("VIGNETTE_SPEC_DIR", "/work/shared/spec")) / "openapi" / "client-server.json"
_PARAM = re.compile(r"\{\w+\}")


async def router_routes(directory: Path) -> list[tuple[str, str]]:
    """(method, pattern) of every route a test server's client listener serves.

    Built in this process from a HomeServer on a throw-away SQLite database, with the
    same config shape the test servers use.
    """
    database = fresh_database_config("sqlite3", directory)
    hs = HomeServer(load_config(str(write_config(directory, database))), reactor)
    await hs.setup()
    try:
        router = hs.build_router(hs.config.listeners[0])
        return sorted({(route.method, route.name) for route in router._routes})
    finally:
        await hs.shutdown()
        drop_database(database)


def shape(pattern: str) -> str:
    """A path pattern with its parameter names and API version blanked, to match spec paths."""
    pattern = pattern.strip().replace("/_matrix/client/r0/", "/_matrix/client/v3/")
    return _PARAM.sub("{}", pattern).rstrip("/")


def spec_json_body_operations() -> set[tuple[str, str]]:
    """(METHOD, shape) of each client-server operation whose request body is JSON (spec v1.19)."""
    document = json.loads(SPEC.read_text())
    found = set()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody") if isinstance(operation, dict) else None
            if body and "application/json" in body.get("content", {}):
                found.add((method.upper(), shape(path)))
    return found
