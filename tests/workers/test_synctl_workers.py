"""synctl manages the whole set: the main process and every worker in a directory."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.support.databases import drop_database
from tests.support.fed_workers import write_split_server
from tests.support.federation import FederationNet
from tests.support.server import REPO_ROOT, server_env
from tests.support.workers import write_process_set

pytestmark = pytest.mark.postgres


def synctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "synctl"), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=server_env(),
    )


def test_all_processes_start_report_and_stop_one_by_one(tmp_path: Path) -> None:
    processes = write_process_set(tmp_path, ["reader1", "reader2"])
    workers_dir = tmp_path / "workers.d"
    workers_dir.mkdir()
    for name, worker in processes.workers.items():
        shutil.copy(worker.config_path, workers_dir / f"{name}.yaml")
    shared = str(processes.main.config_path)
    try:
        started = synctl("-a", str(workers_dir), "start", shared)
        assert started.returncode == 0, started.stdout + started.stderr
        for url in [processes.main.base_url, *(w.base_url for w in processes.workers.values())]:
            assert requests.get(url + "/health", timeout=5).status_code == 200
        status = synctl("--all-processes", str(workers_dir), "status", shared)
        assert status.returncode == 0, status.stdout
        lines = status.stdout.strip().splitlines()
        assert [line.split(":")[1].strip() for line in lines] == ["main", "reader1", "reader2"]
        assert all("running (pid" in line for line in lines)

        # A worker that dies is reported; the others keep running.
        pid = int((processes.workers["reader1"].directory / "worker.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        status = synctl("-a", str(workers_dir), "status", shared)
        assert status.returncode == 1, status.stdout
        assert "reader1: not running" in status.stdout
        assert "reader2: running" in status.stdout and "main: running" in status.stdout
        assert (
            requests.get(processes.workers["reader2"].base_url + "/health", timeout=5).status_code
            == 200
        )

        # One worker on its own.
        alone = synctl("-w", str(workers_dir / "reader1.yaml"), "start", shared)
        assert alone.returncode == 0 and "reader1: started" in alone.stdout, (
            alone.stdout + alone.stderr
        )
        assert synctl("-a", str(workers_dir), "status", shared).returncode == 0
    finally:
        stopped = synctl("-a", str(workers_dir), "stop", shared)
        drop_database(processes.database)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    # Workers go first, main last.
    assert [line.split(":")[1].strip() for line in stopped.stdout.strip().splitlines()] == [
        "reader2",
        "reader1",
        "main",
    ]
    assert synctl("-a", str(workers_dir), "status", shared).returncode == 3


def test_synctl_manages_every_worker_kind(tmp_path: Path) -> None:
    """Federation sender and reader, media and background-jobs workers, as synctl sees them."""
    net = FederationNet.create(tmp_path / "net")
    processes = write_split_server(tmp_path / "set", net)
    workers_dir = tmp_path / "workers.d"
    workers_dir.mkdir()
    for name, worker in processes.workers.items():
        shutil.copy(worker.config_path, workers_dir / f"{name}.yaml")
    shared = str(processes.main.config_path)
    names = ["main", "background1", "fedreader1", "media1", "sender1"]
    try:
        started = synctl("-a", str(workers_dir), "start", shared)
        assert started.returncode == 0, started.stdout + started.stderr
        status = synctl("-a", str(workers_dir), "status", shared)
        assert status.returncode == 0, status.stdout
        lines = status.stdout.strip().splitlines()
        assert [line.split(":")[1].strip() for line in lines] == names
        assert all("running (pid" in line for line in lines)

        pid = int((processes.workers["sender1"].directory / "worker.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        status = synctl("-a", str(workers_dir), "status", shared)
        assert status.returncode == 1, status.stdout
        assert "sender1: not running" in status.stdout
        for name in names[:-1]:
            assert f"{name}: running" in status.stdout
        restarted = synctl("-w", str(workers_dir / "sender1.yaml"), "restart", shared)
        assert restarted.returncode == 0, restarted.stdout + restarted.stderr
        assert synctl("-a", str(workers_dir), "status", shared).returncode == 0
    finally:
        stopped = synctl("-a", str(workers_dir), "stop", shared)
        drop_database(processes.database)
        net.stop()
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert [line.split(":")[1].strip() for line in stopped.stdout.strip().splitlines()] == names[::-1]
