"""What every component may ask of the running homeserver.

Handlers, sync, the pipeline, federation and the API modules are built with
``cls(hs)`` and type ``hs`` as this Protocol. ``homeserver.app.HomeServer`` is the
one real implementation; it sits at the top of the layers, so nothing below it
imports it (tests/test_layering.py), and tests may hand in lighter hosts.
"""

from __future__ import annotations

from typing import Any, Protocol

from homeserver.config.schema import HomeserverConfig
from homeserver.events.builder import ServerSigningKey
from storage.host import StorageHost


class Clock(Protocol):
    """What stamps events with the time: the reactor, or a test's fake clock."""

    def seconds(self) -> float: ...


class Server(StorageHost, Protocol):
    server_name: str
    config: HomeserverConfig
    #: The key new events and requests are signed with, and every key we hold.
    signing_key: ServerSigningKey
    signing_keys: list[ServerSigningKey]
    #: The Twisted reactor. Its interfaces are zope Interfaces, which mypy cannot
    #: check without a plugin, so it stays untyped here.
    reactor: Any
    clock: Clock
