"""Wiring the running server's components to the Prometheus metrics (homeserver/metrics.py).

Composition, like homeserver/app.py: the metrics module imports nothing of ours, storage
knows nothing of Prometheus, so this module connects them: database transactions and
persisted events are counted as they happen; open /sync waits and WebSocket connections,
the caches and the federation queues are read when /_synapse/metrics is scraped.
"""

from __future__ import annotations

from typing import Any

from homeserver.metrics import (
    SCRAPE_HOOKS,
    CallbackGauges,
    observe_persisted,
    observe_transaction,
    register_collector,
)
from homeserver.notifier import Notifier
from homeserver.pipeline import EventPipeline, PersistedBatch
from homeserver.server import Server
from homeserver.websocket.hub import WebSocketHub
from storage.cache_stats import ALL_CACHES
from storage.stores.federation_stats import FederationStatsStore, QueueStats

Gauges = dict[str, tuple[str, list[str], dict[tuple[str, ...], float]]]


class _ServerGauges:
    """What the gauges read: the server most recently wired (one per process in practice)."""

    def __init__(self) -> None:
        self.hs: Server | None = None
        self.queues = QueueStats({}, {}, {})
        self.registered = False

    def read(self) -> Gauges:
        hs = self.hs
        if hs is None:
            return {}
        gauges: Gauges = {
            "synapse_notifier_listeners": ("Requests (/sync) waiting for something new.", [],
                                           {(): float(hs.get(Notifier).waiter_count())}),
            "vignette_websocket_connections": ("WebSocket sync connections open.", [],
                                               {(): float(hs.get(WebSocketHub).connection_count())}),
        }
        gauges.update(_cache_gauges())
        gauges.update(_queue_gauges(self.queues))
        return gauges

    async def refresh(self) -> None:
        if self.hs is not None:
            self.queues = await self.hs.get(FederationStatsStore).queue_stats()


def _cache_gauges() -> Gauges:
    return {
        "synapse_util_caches_cache_hits": ("Cache hits, by cache.", ["name"],
                                           {(c.name,): float(c.hits) for c in ALL_CACHES}),
        "synapse_util_caches_cache_misses": ("Cache misses, by cache.", ["name"],
                                             {(c.name,): float(c.misses) for c in ALL_CACHES}),
        "synapse_util_caches_cache_size": ("Entries in each cache.", ["name"],
                                           {(c.name,): float(len(c.entries)) for c in ALL_CACHES}),
    }


def _queue_gauges(queues: QueueStats) -> Gauges:
    return {
        "synapse_federation_transaction_queue_pending_pdus": (
            "PDUs waiting to be sent, all destinations.", [], {(): float(sum(queues.pending_pdus.values()))}),
        "synapse_federation_transaction_queue_pending_edus": (
            "EDUs waiting to be sent, all destinations.", [], {(): float(sum(queues.pending_edus.values()))}),
        "vignette_federation_destination_pending_pdus": (
            "PDUs waiting to be sent, by destination.", ["destination"],
            {(d,): float(n) for d, n in queues.pending_pdus.items()}),
        "vignette_federation_destination_pending_edus": (
            "EDUs and to-device messages waiting to be sent, by destination.", ["destination"],
            {(d,): float(n) for d, n in queues.pending_edus.items()}),
        "vignette_federation_destination_retry_interval_seconds": (
            "How long the sender waits before trying a failing destination again.", ["destination"],
            {(d,): ms / 1000 for d, ms in queues.retry_interval_ms.items()}),
    }


_GAUGES = _ServerGauges()


def wire_metrics(hs: Server) -> None:
    """Count this server's transactions and events; point the scrape-time gauges at it."""
    hs.db.transaction_listeners.append(observe_transaction)
    hs.get(EventPipeline).add_persisted_listener(_on_persisted)
    _GAUGES.hs = hs
    if not _GAUGES.registered:
        register_collector(CallbackGauges(_GAUGES.read))
        SCRAPE_HOOKS.append(_GAUGES.refresh)
        _GAUGES.registered = True


def _on_persisted(batch: PersistedBatch) -> Any:
    observe_persisted((e.stored.event.type, e.origin is None) for e in batch.events)
    return None
