"""Prometheus metrics shared across the server (exposed by homeserver/api/metrics.py).

Names follow Synapse's where the meaning is the same, so its Grafana dashboards mostly
work; docs/metrics.md lists them all. This module imports nothing of ours: the code that
counts imports it (the HTTP layer), or homeserver/app_metrics.py wires the others to it.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector

HTTP_REQUESTS = Counter(
    "vignette_http_requests_total", "HTTP requests served, by route pattern and status.",
    ["method", "route", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "vignette_http_request_duration_seconds", "Time from request to response, by route pattern.",
    ["method", "route"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)

# -- Synapse's names ---------------------------------------------------------------------
#: The servlet label is our route pattern (Synapse's is the servlet class name).
REQUESTS_RECEIVED = Counter("synapse_http_server_requests_received", "Requests received, by servlet.",
                            ["method", "servlet"])
RESPONSES = Counter("synapse_http_server_responses", "Responses sent, by status code.", ["method", "code"])
RESPONSE_TIME = Histogram(
    "synapse_http_server_response_time_seconds", "Time to answer a request.", ["method", "servlet", "tag", "code"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
DB_TXN_COUNT = Counter("synapse_storage_transaction_time_count", "Database transactions, by description.",
                       ["desc"])
DB_TXN_SECONDS = Counter("synapse_storage_transaction_time_sum", "Seconds spent in database transactions.",
                         ["desc"])
EVENTS_PERSISTED = Counter("synapse_storage_events_persisted_events", "Events persisted.")
EVENTS_PERSISTED_BY_TYPE = Counter("synapse_storage_events_persisted_events_sep",
                                   "Events persisted, by type and origin.", ["type", "origin_type"])
REACTOR_TICK = Histogram("python_twisted_reactor_tick_time", "Time the reactor spends running due calls.",
                         buckets=(0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5))
REACTOR_PENDING = Histogram("python_twisted_reactor_pending_calls", "Delayed calls waiting, at each tick.",
                            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000))
GC_TIME = Histogram("python_gc_time", "Time spent in each garbage collection, by generation.", ["gen"],
                    buckets=(0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
GC_COUNTS = Gauge("python_gc_counts", "Objects tracked per generation (gc.get_count).", ["gen"])
FEDERATION_SENT_TRANSACTIONS = Counter("synapse_federation_client_sent_transactions",
                                       "Transactions a destination accepted.")

#: Awaited by GET /_synapse/metrics before it answers: samplers that read the database.
SCRAPE_HOOKS: list[Callable[[], Awaitable[None]]] = []


def observe_request(method: str, servlet: str, code: str, seconds: float) -> None:
    REQUESTS_RECEIVED.labels(method, servlet).inc()
    RESPONSES.labels(method, code).inc()
    RESPONSE_TIME.labels(method, servlet, "", code).observe(seconds)


def observe_transaction(desc: str, seconds: float) -> None:
    DB_TXN_COUNT.labels(desc).inc()
    DB_TXN_SECONDS.labels(desc).inc(seconds)


def observe_persisted(event_types: Iterable[tuple[str, bool]]) -> None:
    """(type, local?) of each event of a committed batch."""
    for event_type, local in event_types:
        EVENTS_PERSISTED.inc()
        EVENTS_PERSISTED_BY_TYPE.labels(event_type, "local" if local else "remote").inc()


class CallbackGauges(Collector):
    """Gauges whose values are asked for at scrape time: ``read()`` returns
    ``{metric name: (help, label names, {label values: value})}``."""

    def __init__(self, read: Callable[[], dict[str, tuple[str, list[str], dict[tuple[str, ...], float]]]]) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        for name, (documentation, labels, values) in self._read().items():
            family = GaugeMetricFamily(name, documentation, labels=labels)
            for label_values, value in values.items():
                family.add_metric(list(label_values), value)
            yield family


def register_collector(collector: Collector) -> None:
    REGISTRY.register(collector)


def install_gc_metrics() -> None:
    """Time every collection (``gc.callbacks``); once per process."""
    started: dict[str, float] = {}

    def callback(phase: str, info: dict[str, Any]) -> None:
        generation = str(info.get("generation", "?"))
        if phase == "start":
            started[generation] = time.perf_counter()
        elif generation in started:
            GC_TIME.labels(generation).observe(time.perf_counter() - started.pop(generation))
            for gen, count in enumerate(gc.get_count()):
                GC_COUNTS.labels(str(gen)).set(count)

    if callback not in gc.callbacks:
        gc.callbacks.append(callback)


def install_reactor_metrics(reactor: Any) -> None:
    """Time each reactor tick (``runUntilCurrent``: the due calls) and count waiting calls."""
    original = getattr(reactor, "runUntilCurrent", None)
    if original is None or getattr(original, "_vignette_timed", False):
        return

    def timed() -> None:
        REACTOR_PENDING.observe(len(reactor.getDelayedCalls()))
        tick_started = time.perf_counter()
        try:
            original()
        finally:
            REACTOR_TICK.observe(time.perf_counter() - tick_started)

    timed._vignette_timed = True  # type: ignore[attr-defined]
    reactor.runUntilCurrent = timed
