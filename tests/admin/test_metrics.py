"""GET /_synapse/metrics after real actions: the counters and gauges of docs/metrics.md move."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.accounts import custom_server
from tests.support.client import Client, register_user
from tests.support.databases import ENGINES
from tests.support.rooms import create_room, send_message
from tests.support.server import RunningServer, free_port
from tests.support.sync import StreamClient

V3 = "/_matrix/client/v3"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module", params=ENGINES)
def metrics_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    directory = tmp_path_factory.mktemp(f"hs-metrics-{request.param}")
    listeners = [{"port": free_port(), "bind_addresses": ["127.0.0.1"], "type": "http",
                  "resources": [{"names": ["client", "health", "metrics"]}]}]
    with custom_server(directory, request.param, enable_metrics=True, listeners=listeners) as running:
        yield running


def scrape(server: RunningServer) -> Samples:
    response = requests.get(server.base_url + "/_synapse/metrics", timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, metric: str, **labels: str) -> float:
    return samples.get((metric, frozenset(labels.items())), 0.0)


def total(samples: Samples, metric: str, **labels: str) -> float:
    """The sum over every sample of ``metric`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == metric and wanted <= ls)


def eventually(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not check():
        assert time.monotonic() < deadline, "the metric never moved"
        time.sleep(0.1)


def test_requests_by_servlet_method_and_code(metrics_server: RunningServer) -> None:
    user = register_user(metrics_server.base_url)
    servlet = "/_matrix/client/v3/account/whoami"
    before = scrape(metrics_server)
    for _ in range(3):
        assert user.get(f"{V3}/account/whoami").status == 200
    assert Client(metrics_server.base_url).get(f"{V3}/account/whoami").status == 401
    after = scrape(metrics_server)
    received = "synapse_http_server_requests_received_total"
    assert value(after, received, method="GET", servlet=servlet) - value(before, received, method="GET",
                                                                          servlet=servlet) == 4
    timed = "synapse_http_server_response_time_seconds_count"
    labels = {"method": "GET", "servlet": servlet, "tag": ""}
    assert value(after, timed, code="200", **labels) - value(before, timed, code="200", **labels) == 3
    assert value(after, timed, code="401", **labels) - value(before, timed, code="401", **labels) == 1
    assert value(after, "synapse_http_server_response_time_seconds_bucket", code="200", le="+Inf", **labels) >= 3
    assert total(after, "synapse_http_server_responses_total", code="401") >= 1


def test_database_transactions_and_events_persisted(metrics_server: RunningServer) -> None:
    before = scrape(metrics_server)
    user = register_user(metrics_server.base_url)
    room_id = create_room(user)
    for i in range(3):
        send_message(user, room_id, f"counted {i}")
    sep = "synapse_storage_events_persisted_events_sep_total"
    messages = {"type": "m.room.message", "origin_type": "local"}
    eventually(lambda: value(scrape(metrics_server), sep, **messages) - value(before, sep, **messages) == 3)
    after = scrape(metrics_server)
    persisted = "synapse_storage_events_persisted_events_total"
    assert value(after, persisted) - value(before, persisted) >= 3 + 5  # the room's creation events too
    count, seconds = "synapse_storage_transaction_time_count_total", "synapse_storage_transaction_time_sum_total"
    assert value(after, count, desc="create_user") - value(before, count, desc="create_user") == 1
    assert value(after, seconds, desc="create_user") > 0
    assert total(after, count) > total(before, count)


def test_sync_waiters_and_websocket_connections(metrics_server: RunningServer) -> None:
    user = register_user(metrics_server.base_url)
    since = user.get(f"{V3}/sync").body["next_batch"]
    baseline = value(scrape(metrics_server), "synapse_notifier_listeners")
    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(user.get, f"{V3}/sync", params={"since": since, "timeout": 20000})
        eventually(lambda: value(scrape(metrics_server), "synapse_notifier_listeners") == baseline + 1)
        create_room(user)  # wakes the /sync
        assert waiting.result().status == 200
    eventually(lambda: value(scrape(metrics_server), "synapse_notifier_listeners") == baseline)
    stream = StreamClient.connect(user)
    try:
        stream.next_frame()
        assert value(scrape(metrics_server), "vignette_websocket_connections") >= 1
    finally:
        stream.ws.close()


def test_cache_hits_and_misses(metrics_server: RunningServer) -> None:
    user = register_user(metrics_server.base_url)
    before = scrape(metrics_server)
    for _ in range(5):
        user.get(f"{V3}/account/whoami")
    after = scrape(metrics_server)
    hits = "synapse_util_caches_cache_hits"
    assert value(after, hits, name="get_access_token") - value(before, hits, name="get_access_token") >= 4
    for name in ("get_event", "state_group"):
        assert ("synapse_util_caches_cache_misses", frozenset({("name", name)})) in after
    assert value(after, "synapse_util_caches_cache_size", name="get_access_token") >= 1


def test_federation_queue_and_backoff(metrics_server: RunningServer) -> None:
    user = register_user(metrics_server.base_url)
    destination = "unreachable.invalid"
    sent = user.put(f"{V3}/sendToDevice/m.test/metrics1",
                    {"messages": {f"@bob:{destination}": {"DEVICE": {"hello": "there"}}}})
    assert sent.status == 200, sent
    edus = "vignette_federation_destination_pending_edus"
    eventually(lambda: value(scrape(metrics_server), edus, destination=destination) >= 1)
    retry = "vignette_federation_destination_retry_interval_seconds"
    eventually(lambda: value(scrape(metrics_server), retry, destination=destination) > 0)
    assert value(scrape(metrics_server), "synapse_federation_transaction_queue_pending_edus") >= 1


def test_reactor_and_gc(metrics_server: RunningServer) -> None:
    samples = scrape(metrics_server)
    assert value(samples, "python_twisted_reactor_tick_time_count") > 0
    assert value(samples, "python_twisted_reactor_pending_calls_count") > 0
    assert ("python_gc_counts", frozenset({("gen", "0")})) in samples or any(
        n == "python_gc_time_count" for n, _ in samples)


def test_metrics_need_the_setting(server: RunningServer) -> None:
    assert requests.get(server.base_url + "/_synapse/metrics", timeout=30).status_code == 404
