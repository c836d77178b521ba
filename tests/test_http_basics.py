"""Black-box checks of the HTTP surface every client depends on."""

from __future__ import annotations

import json
import socket

import pytest
import requests

from tests.support.databases import drop_database
from tests.support.server import RunningServer, free_port, start_test_server


def test_versions_lists_current_spec(server: RunningServer) -> None:
    response = requests.get(server.url("/_matrix/client/versions"))
    assert response.status_code == 200
    body = response.json()
    assert "v1.19" in body["versions"]
    assert isinstance(body["unstable_features"], dict)


def test_health_answers_ok(server: RunningServer) -> None:
    response = requests.get(server.url("/health"))
    assert response.status_code == 200
    assert response.text == "OK"


def test_unknown_path_is_unrecognized(server: RunningServer) -> None:
    response = requests.get(server.url("/_matrix/client/v3/no_such_endpoint"))
    assert response.status_code == 404
    assert response.json()["errcode"] == "M_UNRECOGNIZED"


def test_wrong_method_is_405(server: RunningServer) -> None:
    response = requests.delete(server.url("/_matrix/client/versions"))
    assert response.status_code == 405
    assert response.json()["errcode"] == "M_UNRECOGNIZED"


def test_cors_headers_and_preflight(server: RunningServer) -> None:
    response = requests.options(server.url("/_matrix/client/versions"),
                                headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"})
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    assert requests.get(server.url("/_matrix/client/versions")).headers["Access-Control-Allow-Origin"] == "*"


def test_well_known_not_configured_is_404_json(server: RunningServer) -> None:
    response = requests.get(server.url("/.well-known/matrix/client"))
    assert response.status_code == 404
    assert response.json()["errcode"] == "M_NOT_FOUND"


def test_access_log_hides_tokens(server: RunningServer) -> None:
    requests.get(server.url("/_matrix/client/versions?access_token=sekrit123&x=1"))
    log = (server.directory / "homeserver.log").read_text()
    assert "GET /_matrix/client/versions?access_token=<redacted>&x=1 200" in log
    assert "sekrit123" not in log


def test_metrics_listener_serves_prometheus_text(tmp_path_factory: pytest.TempPathFactory) -> None:
    directory = tmp_path_factory.mktemp("metrics")
    metrics_port = free_port()
    server, database = start_test_server(
        directory, "sqlite3", enable_metrics=True,
        listeners=[
            {"port": free_port(), "bind_addresses": ["127.0.0.1"], "resources": [{"names": ["client"]}]},
            {"port": metrics_port, "bind_addresses": ["127.0.0.1"], "resources": [{"names": ["metrics"]}]},
        ],
    )
    try:
        requests.get(server.url("/_matrix/client/versions"))
        text = requests.get(f"http://127.0.0.1:{metrics_port}/_synapse/metrics").text
        assert 'vignette_http_requests_total{method="GET",route="/_matrix/client/versions",status="200"}' in text
        assert "process_resident_memory_bytes" in text
        not_on_client = requests.get(server.url("/_synapse/metrics"))
        assert not_on_client.json()["errcode"] == "M_UNRECOGNIZED"
    finally:
        server.stop()
        drop_database(database)


def _raw_exchange(server: RunningServer, head: bytes, body: bytes) -> bytes:
    """Send a request head and part of a body on a raw socket, then read until the server closes."""
    port = int(server.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head + body)
        received = b""
        while True:
            chunk = sock.recv(65536)  # a hang here (the server waiting for the body) fails on timeout
            if not chunk:
                return received
            received += chunk


@pytest.mark.parametrize("extra", [b"", b"Expect: 100-continue\r\n",
                                   b"Authorization: Bearer not-a-token\r\n"])
def test_declared_body_over_the_limit_is_refused_before_it_is_sent(server: RunningServer, extra: bytes) -> None:
    """413 as soon as the headers are in, before authentication: the 1 GiB never has to be sent."""
    head = (b"POST /_matrix/client/v3/createRoom HTTP/1.1\r\nHost: test\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1073741824\r\n" + extra + b"\r\n")
    received = _raw_exchange(server, head, b'{"name": "')
    status_line, _, rest = received.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413"), received[:200]
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert b"100 Continue" not in received
    assert b"access-control-allow-origin: *" in headers.lower()
    assert json.loads(body)["errcode"] == "M_TOO_LARGE"
    # The server is fine afterwards, and a body within the limit is still read as before.
    response = requests.post(server.url("/_matrix/client/v3/createRoom"), data=b"{}")
    assert response.json()["errcode"] == "M_MISSING_TOKEN"
