"""A joined room's incremental entry, built once for every member woken by the same events.

The members a message wakes all ask for the same room over the same (since, upto], mostly
with the same filter. What does not depend on the reader (the timeline before history
visibility, whether it is limited, the state section, every event in client format) is built
once per (room, since, upto, filter) by the first of them; the others wait for it. A reader
then takes it when it may see every one of those events (history visibility says so from one
set per state group, handlers/rooms/visibility.py), with its own copy of each event dict
carrying its ``unsigned`` age and, for the sending device, its transaction_id. Otherwise, and
when a thread summary (per reader) or ``event_fields`` is involved, the per-reader path runs.
The fast-path test (tests/sync/test_fast_path.py) compares both.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from twisted.internet.defer import Deferred

from homeserver.handlers.rooms.event_format import (
    EventFormatter,
    for_reader,
    has_reader_bundle,
    reader_unsigned,
)
from homeserver.server import Server
from homeserver.sync.encoded import EncodedEvent, SharedEncoding
from homeserver.sync.provider import SyncRequest
from storage.stores.events import StoredEvent

#: Entries kept: one per room with new events and distinct (since, upto, filter) being read.
ENTRIES_KEPT = 256

#: (room, since, upto, filter text, EventStore.invalidations when built).
Key = tuple[str, int, int, str, int]


@attrs.frozen
class SharedRoom:
    """What every reader of a room over one window gets, reader-independent parts only."""

    #: Timeline candidates before history visibility, oldest first.
    events: list[StoredEvent]
    limited: bool
    prev_batch: str
    state_events: list[StoredEvent]
    #: format_shared output for events and state_events.
    timeline: list[dict[str, Any]]
    state: list[dict[str, Any]]
    touches_members: bool
    #: False when a reader-dependent part (a thread summary) rules sharing out.
    shareable: bool
    #: The same, serialised once for every reader (encoded.py).
    timeline_encoded: list[SharedEncoding]
    state_encoded: list[SharedEncoding]


def reader_copy(request: SyncRequest, events: list[StoredEvent], shared: list[dict[str, Any]],
                scope: str | None) -> list[dict[str, Any]]:
    now = int(time.time() * 1000)
    return [for_reader(stored, formatted, scope, now) for stored, formatted in zip(events, shared, strict=True)]


def reader_encoded(events: list[StoredEvent], shared: list[SharedEncoding],
                   scope: str | None, now: int) -> list[EncodedEvent]:
    """``reader_copy`` for a response written by ``encode_spliced``: the shared text, not a copy."""
    return [EncodedEvent(stored, encoding, reader_unsigned(stored, scope, now))
            for stored, encoding in zip(events, shared, strict=True)]


def encodings(formatted: list[dict[str, Any]]) -> list[SharedEncoding]:
    return [SharedEncoding.of(event) for event in formatted]


async def format_for_sharing(hs: Server, events: list[StoredEvent],
                             state_events: list[StoredEvent]) -> tuple[list[dict[str, Any]],
                                                                        list[dict[str, Any]], bool]:
    formatter = hs.get(EventFormatter)
    timeline = await formatter.format_shared(events)
    state = await formatter.format_shared(state_events)
    shareable = not any(has_reader_bundle(e) for e in [*timeline, *state])
    return timeline, state, shareable


class SharedRooms:
    """The entries, and the builds in flight (later readers of the same key wait for them)."""

    def __init__(self, hs: Server) -> None:
        self._entries: OrderedDict[Key, SharedRoom] = OrderedDict()
        self._building: dict[Key, list[Deferred[SharedRoom | None]]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: Key, build: Callable[[], Awaitable[SharedRoom]]) -> SharedRoom | None:
        found = self._entries.get(key)
        if found is not None:
            return found
        waiting = self._building.get(key)
        if waiting is not None:
            waiter: Deferred[SharedRoom | None] = Deferred()
            waiting.append(waiter)
            return await waiter
        self._building[key] = []
        built: SharedRoom | None = None
        try:
            built = await build()
            self._entries[key] = built
            if len(self._entries) > ENTRIES_KEPT:
                self._entries.popitem(last=False)
        finally:
            for waiter in self._building.pop(key):
                waiter.callback(built)  # None after a failure: those readers build their own
        return built
