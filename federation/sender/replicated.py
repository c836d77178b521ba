"""The federation sender in a worker (docs/workers.md, "Federation sender").

The process that ``federation_sender_instances`` names sends every transaction; the others
persist events, EDUs and to-device messages to the shared queue tables as before, and only
tell the sender to look (``FederationSender.handover``). Nothing travels only in a message:

- PDUs: the sender follows the events stream. Each advance it hears (or reads back after a
  Redis outage) queues our events from its persisted position up to the advance, through
  the same per-destination rows as in one process, so a restart of the sender resumes from
  that position and loses nothing.
- EDUs and to-device messages are rows already (``send_edu``, the outbox); a wake-up names
  the destination. A missed wake-up is repaired by the catch-up after any reconnection
  (every destination with something queued is woken) and by ``SWEEP_INTERVAL_S``.
- Typing, receipts, presence and device lists: the EDU forwarders listen to the replicated
  streams exactly as they listen to local ones.
"""

from __future__ import annotations

import logging

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall

from federation.sender.edus import _Serial
from federation.sender.sender import FederationSender
from homeserver.server import Server
from storage.stores.federation_queue import FederationQueueStore
from storage.streams import StreamAdvance, Streams

logger = logging.getLogger(__name__)

#: How often the sender worker wakes every destination with something queued, in case a
#: wake-up from another process was lost with a Redis message.
SWEEP_INTERVAL_S = 60.0


class ReplicatedSenderFeed:
    """Feeds the sender in a worker from the replicated streams (built where it sends)."""

    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.sender = hs.get(FederationSender)
        self.store = hs.get(FederationQueueStore)
        self.streams = hs.get(Streams)
        self._events = _Serial("queueing replicated events", self._queue_events)
        self._sweep = _Serial("waking queued destinations", self.wake_all_pending)
        self._loop: LoopingCall | None = None

    def start(self) -> None:
        self.streams.add_listener(self._on_advance)
        self._loop = LoopingCall(self._sweep.trigger)
        self._loop.clock = self.hs.reactor
        self._loop.start(SWEEP_INTERVAL_S, now=False)
        self._events.trigger()

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def _on_advance(self, advance: StreamAdvance) -> None:
        if advance.stream == "events":
            self._events.trigger()
        if advance.everyone:  # a catch-up: whatever was said meanwhile may be lost
            self._sweep.trigger()

    async def _queue_events(self) -> None:
        await self.sender.queue_events_upto(self.streams.current_position("events"))

    async def wake_all_pending(self) -> None:
        for destination in sorted(await self.store.destinations_with_pending()):
            self.sender.wake(destination)

    def on_contact(self, origins: list[str]) -> None:
        """These servers reached another process of ours: they are up, stop backing off."""
        for origin in origins:
            Deferred.fromCoroutine(self.sender.on_peer_contact(origin)).addErrback(
                lambda failure: logger.warning("peer contact: %s", failure.getErrorMessage()))

    def on_handover(self, destinations: list[str]) -> None:
        """Another process queued something for these destinations."""
        for destination in destinations:
            self.sender.wake(destination)

