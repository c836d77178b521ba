"""Small async helpers shared across areas."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

from twisted.internet.defer import Deferred, DeferredLock
from twisted.python.failure import Failure

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SharedLookups(Generic[K, V]):
    """Concurrent calls for the same key share one run (Synapse's "concurrent misses share one lookup")."""

    def __init__(self) -> None:
        self._waiting: dict[K, list[Deferred[V]]] = {}

    def pending(self, key: K) -> bool:
        return key in self._waiting

    async def run(self, key: K, lookup: Callable[[], Awaitable[V]]) -> V:
        waiters = self._waiting.get(key)
        if waiters is not None:
            mine: Deferred[V] = Deferred()
            waiters.append(mine)
            return await mine
        waiters = self._waiting[key] = []
        try:
            result = await lookup()
        except BaseException as exc:
            del self._waiting[key]
            for waiter in waiters:
                waiter.errback(Failure(exc))
            raise
        del self._waiting[key]
        for waiter in waiters:
            waiter.callback(result)
        return result


class KeyedLocks(Generic[K]):
    """One holder at a time per key (``async with locks.hold(key):``); a key's lock is dropped once
    nobody holds or waits for it, so the map stays as small as the set of keys in use."""

    def __init__(self) -> None:
        self._locks: dict[K, DeferredLock] = {}

    @asynccontextmanager
    async def hold(self, key: K) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, DeferredLock())
        await lock.acquire()
        try:
            yield
        finally:
            lock.release()
            if not lock.locked and not lock.waiting:
                self._locks.pop(key, None)
