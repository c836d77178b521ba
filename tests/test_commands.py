"""The operator commands: --generate-config and synctl, run as an operator would."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import requests
import yaml

from tests.support.server import REPO_ROOT, free_port, server_env


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120, cwd=str(cwd), env=server_env())


def generate(tmp_path: Path) -> Path:
    result = run(sys.executable, "-m", "homeserver", "-c", "homeserver.yaml", "--generate-config",
                 "--server-name", "example.org", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return tmp_path / "homeserver.yaml"


def test_generate_config_writes_config_and_synapse_format_key(tmp_path: Path) -> None:
    config_path = generate(tmp_path)
    config = yaml.safe_load(config_path.read_text())
    assert config["server_name"] == "example.org"
    assert config["database"]["name"] == "sqlite3"
    key_text = Path(config["signing_key_path"]).read_text()
    assert re.fullmatch(r"ed25519 a_[A-Za-z0-9]{4} [A-Za-z0-9+/]{43}\n", key_text)
    assert Path(config["tls_certificate_path"]).exists()


def test_generate_config_never_overwrites(tmp_path: Path) -> None:
    config_path = generate(tmp_path)
    config = yaml.safe_load(config_path.read_text())
    key_before = Path(config["signing_key_path"]).read_text()
    config_before = config_path.read_text()
    result = run(sys.executable, "-m", "homeserver", "-c", "homeserver.yaml", "--generate-config",
                 "--server-name", "other.org", cwd=tmp_path)
    assert result.returncode == 0
    assert "already exists" in result.stdout
    assert config_path.read_text() == config_before
    assert Path(config["signing_key_path"]).read_text() == key_before


def test_generate_config_needs_server_name(tmp_path: Path) -> None:
    result = run(sys.executable, "-m", "homeserver", "-c", "x.yaml", "--generate-config", cwd=tmp_path)
    assert result.returncode == 1
    assert "--server-name" in result.stderr


def test_synctl_start_status_restart_stop(tmp_path: Path) -> None:
    config_path = generate(tmp_path)
    config = yaml.safe_load(config_path.read_text())
    client_port, federation_port = free_port(), free_port()
    config["listeners"][0]["port"] = client_port
    config["listeners"][1]["port"] = federation_port
    config_path.write_text(yaml.safe_dump(config))
    synctl = [sys.executable, str(REPO_ROOT / "synctl")]

    assert run(*synctl, "status", str(config_path), cwd=tmp_path).returncode == 3
    started = run(*synctl, "start", str(config_path), cwd=tmp_path)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert requests.get(f"http://127.0.0.1:{client_port}/_matrix/client/versions").status_code == 200
        federation = requests.get(f"https://127.0.0.1:{federation_port}/health", verify=False)
        assert federation.status_code == 200
        status = run(*synctl, "status", str(config_path), cwd=tmp_path)
        assert status.returncode == 0 and "running (pid" in status.stdout
        first_pid = Path(config["pid_file"]).read_text().strip()

        restarted = run(*synctl, "restart", str(config_path), cwd=tmp_path)
        assert restarted.returncode == 0, restarted.stderr
        assert Path(config["pid_file"]).read_text().strip() != first_pid
    finally:
        stopped = run(*synctl, "stop", str(config_path), cwd=tmp_path)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not Path(config["pid_file"]).exists()
    assert run(*synctl, "status", str(config_path), cwd=tmp_path).returncode == 3


def test_synctl_start_reports_why_it_failed(tmp_path: Path) -> None:
    config_path = generate(tmp_path)
    config = yaml.safe_load(config_path.read_text())
    config["default_room_version"] = "99"
    config_path.write_text(yaml.safe_dump(config))
    result = run(sys.executable, str(REPO_ROOT / "synctl"), "start", str(config_path), cwd=tmp_path)
    assert result.returncode == 1
    assert "default_room_version" in result.stderr


def test_port_in_use_is_one_line(tmp_path: Path) -> None:
    import socket

    config_path = generate(tmp_path)
    config = yaml.safe_load(config_path.read_text())
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        config["listeners"] = [{"port": busy.getsockname()[1], "resources": [{"names": ["client"]}]}]
        config_path.write_text(yaml.safe_dump(config))
        result = run(sys.executable, "-m", "homeserver", "-c", str(config_path), cwd=tmp_path)
    assert result.returncode == 1
    assert "cannot start: cannot listen on 127.0.0.1" in result.stderr
    assert "Traceback" not in result.stderr
