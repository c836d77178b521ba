"""An in-process harness, in the manner of Synapse's HomeserverTestCase: homeservers
built in the test process on real storage (SQLite or PostgreSQL), each with a fake
clock, joined by an in-memory federation transport instead of HTTP.

- Time: each homeserver stamps its events from its own `twisted.internet.task.Clock`,
  which only moves when the test says so (`tick`), so timestamps, and with them event
  IDs and state-resolution tie-breaks, are the same on every run. The database thread
  pool and the notifier's timers still run on the real reactor: storage stays real.
- Federation: `InMemoryFederation` listens to each server's pipeline after every
  commit (the hook the federation sender will use) and queues that server's own new
  events for every other server. `flush()` hands them to the receiving pipeline's
  `submit_remote`, after a round trip through canonical JSON as on the wire; while
  `partitioned`, nothing is delivered, so two servers can build forks deliberately.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
from twisted.internet import reactor
from twisted.internet.task import Clock

from homeserver.app import HomeServer
from homeserver.config import load_config
from homeserver.events.canonical_json import encode_canonical_json
from homeserver.events.event import Event
from homeserver.pipeline import EventPipeline, EventResult, EventSpec, PersistedBatch
from storage.stores.events import StoredEvent
from tests.support.databases import drop_database, fresh_database_config
from tests.support.server import write_config


@attrs.define
class HarnessServer:
    hs: HomeServer
    clock: Clock
    database: dict[str, Any]

    @property
    def name(self) -> str:
        return self.hs.server_name

    @property
    def pipeline(self) -> EventPipeline:
        return self.hs.get(EventPipeline)

    def tick(self, seconds: float = 1.0) -> None:
        self.clock.advance(seconds)

    async def send(self, room_id: str, sender: str, event_type: str, content: dict[str, Any],
                   state_key: str | None = None) -> StoredEvent:
        """A local event through the pipeline (one second after the last one)."""
        self.tick()
        (stored,) = await self.pipeline.submit_local(
            room_id, [EventSpec(event_type, sender, content, state_key)])
        return stored

    async def stop(self) -> None:
        await self.hs.shutdown()
        drop_database(self.database)


async def start_server(tmp_path: Path, engine: str, server_name: str) -> HarnessServer:
    directory = tmp_path / server_name
    database = fresh_database_config(engine, tmp_path)
    config = load_config(str(write_config(directory, database, server_name=server_name)))
    clock = Clock()
    clock.advance(1_700_000_000)
    hs = HomeServer(config, reactor, clock=clock)
    await hs.setup()
    return HarnessServer(hs, clock, database)


def over_the_wire(event: Event) -> Event:
    """The event as a peer parses it: canonical JSON, re-read, ID recomputed (v3+)."""
    pdu = json.loads(encode_canonical_json(event.pdu))
    pdu.pop("unsigned", None)
    carried = event.event_id if event.room_version.event_id_carried_in_pdu else None
    return Event.from_pdu(pdu, event.room_version, event_id=carried)


class InMemoryFederation:
    """Delivers each server's own events to the others, when the test flushes."""

    def __init__(self, servers: Sequence[HarnessServer]) -> None:
        self.servers = list(servers)
        self.partitioned = False
        self.results: list[EventResult] = []
        self._outbox: dict[str, list[tuple[str, str, Event]]] = {s.name: [] for s in self.servers}
        for server in self.servers:
            server.pipeline.add_persisted_listener(self._sender_for(server))

    def _sender_for(self, origin: HarnessServer) -> Any:
        def on_persisted(batch: PersistedBatch) -> None:
            for stored in batch.local_events():
                for destination in self.servers:
                    if destination is not origin:
                        self._outbox[destination.name].append((origin.name, batch.room_id, stored.event))
        return on_persisted

    async def flush(self) -> list[EventResult]:
        """Deliver everything queued (unless partitioned); returns the receivers' results."""
        if self.partitioned:
            return []
        delivered: list[EventResult] = []
        for destination in self.servers:
            queued, self._outbox[destination.name] = self._outbox[destination.name], []
            for origin, room_id, event in queued:
                delivered.extend(await destination.pipeline.submit_remote(
                    room_id, [over_the_wire(event)], origin))
        self.results.extend(delivered)
        return delivered
