"""Config loading: every broken value gives one line naming the key, and the sample documents every key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest
import yaml

from homeserver.config import ConfigError, load_config, parse_config
from homeserver.config.loader import ByteSize, Duration
from homeserver.config.schema import HomeserverConfig
from homeserver.signing_key import write_new_signing_key
from tests.support.server import REPO_ROOT, server_env


def base_config(tmp_path: Path) -> dict[str, Any]:
    key_path = tmp_path / "signing.key"
    write_new_signing_key(str(key_path))
    return {
        "server_name": "example.com",
        "signing_key_path": str(key_path),
        "listeners": [{"port": 8008, "resources": [{"names": ["client"]}]}],
        "database": {"name": "sqlite3", "args": {"database": str(tmp_path / "hs.db")}},
    }


def run_server(config_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "homeserver", "-c", str(config_path)],
                          capture_output=True, text=True, timeout=60, env=server_env())


BROKEN = [
    ("unknown key", {"no_such_key": 1}, "no_such_key: unknown key"),
    ("wrong type", {"enable_registration": "yes"}, "enable_registration: expected true or false"),
    ("bad port", {"listeners": [{"port": 70000}]}, "listeners[0].port: expected a port number"),
    ("port not int", {"listeners": [{"port": "http"}]}, "listeners[0].port: expected a port number"),
    ("bad resource", {"listeners": [{"port": 1, "resources": [{"names": ["cleint"]}]}]},
     "listeners[0].resources[0].names: expected resource names"),
    ("bad room version", {"default_room_version": "13"}, "default_room_version: expected a room version"),
    ("int room version", {"default_room_version": 12}, "default_room_version: expected a string"),
    ("bad server name", {"server_name": "bad name"}, "server_name: expected a server name"),
    ("bad cidr", {"ip_range_whitelist": ["10.0.0.0/99"]}, "ip_range_whitelist: expected IP ranges in CIDR form"),
    ("bad duration", {"to_device_retention": "thirty days"}, "to_device_retention: expected a duration"),
    ("bad size", {"max_upload_size": "big"}, "max_upload_size: expected a size"),
    ("bad db engine", {"database": {"name": "mysql"}}, "database.name: expected one of 'sqlite3', 'psycopg2'"),
    ("nested unknown", {"presence": {"enabld": True}}, "presence.enabld: unknown key"),
    ("tls without cert", {"listeners": [{"port": 1, "tls": True}]}, "listeners[0].tls: a TLS listener needs"),
    ("negative group size", {"max_group_size": 0}, "max_group_size: expected a number greater than zero"),
    ("bad old key id", {"old_signing_keys": {"rsa:1": {"key": "A" * 43, "expired_ts": 1}}},
     "old_signing_keys: rsa:1: expected a key ID"),
    ("bad old key", {"old_signing_keys": {"ed25519:a": {"key": "short", "expired_ts": 1}}},
     "old_signing_keys: ed25519:a: expected a base64 ed25519 public key"),
    ("old key without expiry", {"old_signing_keys": {"ed25519:a": {"key": "A" * 43}}},
     "old_signing_keys.ed25519:a.expired_ts: missing"),
    ("bad dns server", {"outbound_dns_servers": ["dns.example"]}, "outbound_dns_servers: expected a DNS server"),
    ("bad whitelist name", {"federation_domain_whitelist": ["a b"]}, "federation_domain_whitelist: expected a server"),
    ("insecure notary", {"federation_verify_certificates": False,
                         "trusted_key_servers": [{"server_name": "notary.example"}]},
     "trusted_key_servers[0]: without verify_keys"),
    ("missing ca file", {"federation_custom_ca_list": ["/nonexistent/ca.pem"]},
     "federation_custom_ca_list[0]: cannot read"),
    ("bad refresh interval", {"key_refresh_interval": "soon"}, "key_refresh_interval: expected a duration"),
    ("two gc thresholds", {"gc_thresholds": [700, 10]}, "gc_thresholds: expected three numbers"),
    ("zero gc threshold", {"gc_thresholds": [700, 0, 10]}, "gc_thresholds: expected three numbers"),
    ("bad gc interval", {"gc_min_interval": ["1s", "often", "30s"]}, "gc_min_interval[1]: expected a duration"),
    ("two gc intervals", {"gc_min_interval": ["1s", "10s"]}, "gc_min_interval: expected three durations"),
]


@pytest.mark.parametrize(("case", "change", "message"), BROKEN, ids=[case for case, _, _ in BROKEN])
def test_broken_values_give_one_line(tmp_path: Path, case: str, change: dict[str, Any], message: str) -> None:
    config = base_config(tmp_path) | change
    path = tmp_path / "homeserver.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_server(path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert message in lines[0]


def test_missing_config_file(tmp_path: Path) -> None:
    result = run_server(tmp_path / "absent.yaml")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "does not exist" in result.stderr


def test_missing_required_key(tmp_path: Path) -> None:
    config = base_config(tmp_path)
    del config["server_name"]
    with pytest.raises(ConfigError, match="server_name: missing"):
        parse_config(config)


@pytest.mark.parametrize("content", [None, b"ed25519 a_x notbase64!!\n", b"rsa a_x AAAA\n", b"\xff\xfe\n"])
def test_unreadable_or_malformed_key_file(tmp_path: Path, content: bytes | None) -> None:
    config = base_config(tmp_path)
    key_path = tmp_path / "bad.key"
    if content is not None:
        key_path.write_bytes(content)
    config["signing_key_path"] = str(key_path)
    path = tmp_path / "homeserver.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_server(path)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "signing_key_path:" in result.stderr


def test_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "homeserver.yaml"
    path.write_text("server_name: [unclosed\n")
    result = run_server(path)
    assert result.returncode == 1
    assert "not valid YAML at line" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_units_parse() -> None:
    assert Duration.parse("30d") == 30 * 86_400_000
    assert Duration.parse("500ms") == 500
    assert Duration.parse(1500) == 1500
    assert ByteSize.parse("50M") == 50 * 1024 * 1024
    assert ByteSize.parse("512K") == 512 * 1024


def test_defaults(tmp_path: Path) -> None:
    config = parse_config(base_config(tmp_path))
    assert config.default_room_version == "12"
    assert config.max_group_size == 1500
    assert config.to_device_retention == 30 * 86_400_000
    assert config.presence.enabled is False
    assert "127.0.0.0/8" in config.ip_range_blacklist


def _key_paths(cls: type, prefix: str = "") -> list[str]:
    """Every documented key path, descending into nested sections."""
    attrs.resolve_types(cls)
    paths = []
    for fld in attrs.fields(cls):
        path = f"{prefix}{fld.name}"
        paths.append(path)
        inner = fld.type
        args = getattr(inner, "__args__", ())
        for candidate in (inner, *args):
            if attrs.has(candidate):
                # A mapping of names to sections (old_signing_keys) is looked into at any name.
                nested = path + (".*." if getattr(inner, "__origin__", None) is dict else ".")
                paths.extend(_key_paths(candidate, nested))
    return paths


def _sample_sets(sample: Any, path: str) -> bool:
    """Does the sample give this dotted key (looking into the first item of lists, any name for `*`)?"""
    node = sample
    for part in path.split("."):
        if isinstance(node, list):
            node = node[0] if node else None
        if part == "*":
            node = next(iter(node.values()), None) if isinstance(node, dict) and node else None
            continue
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_sample_config_documents_every_key_and_loads(tmp_path: Path) -> None:
    sample_text = (REPO_ROOT / "config.sample.yaml").read_text()
    sample = yaml.safe_load(sample_text)
    # Every rate limit's `enabled` is shown once, on rc_message, and explained in the section header.
    missing = [path for path in _key_paths(HomeserverConfig) if not _sample_sets(sample, path)
               and not (path.startswith("rc_") and path.endswith(".enabled"))]
    assert missing == []
    key_path = tmp_path / "sample.key"
    write_new_signing_key(str(key_path))
    sample["signing_key_path"] = str(key_path)
    for listener in sample["listeners"]:
        listener["tls"] = False
    config_path = tmp_path / "sample.yaml"
    config_path.write_text(yaml.safe_dump(sample))
    assert isinstance(load_config(str(config_path)), HomeserverConfig)


def test_bad_database_args_are_a_config_error(tmp_path: Path) -> None:
    config = base_config(tmp_path) | {"database": {"name": "psycopg2", "args": {"cp_min": 5, "cp_max": 1}}}
    path = tmp_path / "homeserver.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_server(path)
    assert result.returncode == 1
    assert "vignette: config error: database:" in result.stderr
    assert "Traceback" not in result.stderr
