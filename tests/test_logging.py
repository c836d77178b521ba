"""Logging per config: JSON lines to a file, one access line per request."""

from __future__ import annotations

import json
from pathlib import Path

import requests

from tests.support.databases import drop_database
from tests.support.server import start_test_server


def test_json_log_lines_with_one_access_line_per_request(tmp_path: Path) -> None:
    log_file = tmp_path / "json.log"
    server, database = start_test_server(tmp_path, "sqlite3", logging={"format": "json", "file": str(log_file)})
    try:
        requests.get(server.url("/_matrix/client/versions"))
        requests.get(server.url("/no/such/path"))
    finally:
        server.stop()
        drop_database(database)
    entries = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)
    access = [entry["message"] for entry in entries if entry["logger"] == "homeserver.access"]
    assert any(" GET /_matrix/client/versions 200 " in line for line in access)
    assert any(" GET /no/such/path 404 " in line for line in access)


def test_x_forwarded_listener_logs_the_client_address(tmp_path: Path) -> None:
    from tests.support.server import free_port

    log_file = tmp_path / "text.log"
    server, database = start_test_server(
        tmp_path, "sqlite3", logging={"file": str(log_file)},
        listeners=[{"port": free_port(), "x_forwarded": True, "resources": [{"names": ["client", "health"]}]}],
    )
    try:
        requests.get(server.url("/_matrix/client/versions"), headers={"X-Forwarded-For": "203.0.113.7, 10.0.0.1"})
    finally:
        server.stop()
        drop_database(database)
    assert "homeserver.access: 203.0.113.7 GET /_matrix/client/versions 200" in log_file.read_text()
