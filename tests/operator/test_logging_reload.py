"""log_config (a Python logging dictConfig, Synapse's key) and SIGHUP: log files are
reopened after rotation and the log config is re-read, on a real server process."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.support.databases import drop_database
from tests.support.server import RunningServer, start_test_server

WAIT_S = 30


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def synapse_log_config(path: Path) -> dict[str, Any]:
    """The shape of Synapse's sample log config: buffered, rotating, with %(request)s."""
    return {
        "version": 1,
        "formatters": {"precise": {
            "format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s"}},
        "handlers": {
            "file": {"class": "logging.handlers.TimedRotatingFileHandler", "formatter": "precise",
                     "filename": str(path), "when": "midnight", "backupCount": 3, "encoding": "utf8"},
            "buffer": {"class": "synapse.logging.handlers.PeriodicallyFlushingMemoryHandler",
                       "target": "file", "capacity": 10, "flushLevel": 30, "period": 0.2},
        },
        "loggers": {"synapse.storage.SQL": {"level": "INFO"}},
        "root": {"level": "INFO", "handlers": ["buffer"]},
        "disable_existing_loggers": False,
    }


@pytest.fixture
def running(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[RunningServer, Path]]:
    log_config = tmp_path / "log.yaml"
    log_file = tmp_path / "vignette.log"
    overrides: dict[str, Any]
    if request.param == "log_config":
        log_config.write_text(yaml.safe_dump(synapse_log_config(log_file)))
        overrides = {"log_config": str(log_config)}
    else:
        overrides = {"logging": {"file": str(log_file)}}
    server, database = start_test_server(tmp_path, "sqlite3", **overrides)
    try:
        yield server, log_file
    finally:
        server.stop()
        drop_database(database)


def hit(server: RunningServer, marker: str) -> None:
    assert requests.get(server.url(f"/_matrix/client/versions?m={marker}"), timeout=10).status_code == 200


def logged(path: Path, marker: str) -> bool:
    return path.exists() and f"m={marker}" in path.read_text(errors="replace")


def sighup(server: RunningServer) -> None:
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGHUP)


@pytest.mark.parametrize("running", ["log_config", "logging"], indirect=True)
def test_sighup_reopens_the_log_file_after_rotation(running: tuple[RunningServer, Path]) -> None:
    server, log_file = running
    hit(server, "before")
    wait_for(lambda: logged(log_file, "before"), "the first access line")
    rotated = log_file.with_name(log_file.name + ".1")
    log_file.rename(rotated)
    hit(server, "rotated")  # still written to the renamed file: the handler holds it open
    wait_for(lambda: logged(rotated, "rotated"), "a line in the rotated file")
    sighup(server)
    wait_for(log_file.exists, "the log file to be reopened")
    hit(server, "after")
    wait_for(lambda: logged(log_file, "after"), "a line in the new file")
    assert not logged(rotated, "after")
    assert "reopened the log files" in log_file.read_text()
    assert server.process is not None and server.process.poll() is None


@pytest.mark.parametrize("running", ["log_config"], indirect=True)
def test_sighup_rereads_the_log_config(running: tuple[RunningServer, Path]) -> None:
    server, log_file = running
    elsewhere = log_file.with_name("elsewhere.log")
    log_config = server.directory / "log.yaml"
    log_config.write_text(yaml.safe_dump(synapse_log_config(elsewhere)))
    sighup(server)
    wait_for(elsewhere.exists, "the new log file")
    hit(server, "moved")
    wait_for(lambda: logged(elsewhere, "moved"), "a line in the newly configured file")
    assert not logged(log_file, "moved")
    # Synapse's %(request)s works: every record carries one.
    assert " - homeserver.access - " in elsewhere.read_text()


@pytest.mark.parametrize("running", ["log_config"], indirect=True)
def test_a_broken_log_config_on_sighup_keeps_the_old_one(running: tuple[RunningServer, Path]) -> None:
    server, log_file = running
    (server.directory / "log.yaml").write_text("version: 1\nhandlers: [not, a, mapping]\n")
    sighup(server)
    wait_for(lambda: log_file.exists() and "could not be reloaded" in log_file.read_text(), "the error line")
    hit(server, "still")
    wait_for(lambda: logged(log_file, "still"), "logging to carry on")
    assert server.process is not None and server.process.poll() is None
