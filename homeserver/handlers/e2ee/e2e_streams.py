"""Tell the notifier about E2EE stream writes only once the stream position covers them.

A writer finishes its stream id when its transaction ends, but an earlier id may
still be in flight; waking a sync then would let it hand out a token past the
gap. So each write's wake-up waits here until ``get_current_token()`` reaches it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from homeserver.notifier import Notifier
from storage.stores.e2e_stream_ids import LazyStreamIds
from storage.streams import StreamIdGenerator


class NotifyingStream:
    """One E2EE stream ("to_device" or "device_lists") and its pending wake-ups."""

    def __init__(self, hs: Any, name: str, ids: LazyStreamIds) -> None:
        self._notifier: Notifier = hs.get(Notifier)
        self.name = name
        self._ids = ids
        self._pending: list[tuple[int, frozenset[str]]] = []
        self._listening = False

    async def generator(self) -> StreamIdGenerator:
        generator = await self._ids.get()
        if not self._listening:
            self._listening = True
            generator.add_advance_listener(self._on_advance)
        return generator

    def current_position(self) -> int:
        """The persisted-up-to position; 0 before the generator exists (nothing written yet)."""
        generator = self._ids.ready
        return 0 if generator is None else generator.get_current_token()

    def written(self, position: int, users: Iterable[str]) -> None:
        """Call after the write's stream id is finished: wake these users once it is visible."""
        self._pending.append((position, frozenset(users)))
        self._on_advance(self.current_position())

    def _on_advance(self, token: int) -> None:
        ready = [entry for entry in self._pending if entry[0] <= token]
        if not ready:
            return
        self._pending = [entry for entry in self._pending if entry[0] > token]
        users = frozenset().union(*(entry[1] for entry in ready))
        self._notifier.on_new_event(self.name, token, users=users)
