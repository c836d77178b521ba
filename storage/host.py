"""What a store needs of the running server: its database, and its other components.

A Protocol, not the HomeServer itself, because the server sits far above storage in
the layers; anything with these two members (the server, a test's host) will do.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from storage.engine import Database

T = TypeVar("T")


class StorageHost(Protocol):
    @property
    def db(self) -> Database: ...

    def get(self, cls: type[T]) -> T: ...
