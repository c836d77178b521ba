"""A Synapse operator's homeserver.yaml: Synapse keys Vignette lacks are warnings,
typos get a suggestion, and --check-config validates without starting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from homeserver.config import ConfigError, parse_config
from homeserver.config.rooms import DirectoryRule, rules_allow
from homeserver.config.synapse_keys import SYNAPSE_TOP_LEVEL_KEYS, SYNAPSE_VERSION
from tests.support.databases import drop_database, fresh_database_config
from tests.support.server import RunningServer, server_env, write_config

#: Keys from a typical Synapse homeserver.yaml that Vignette does not implement.
SYNAPSE_ONLY = {
    "report_stats": False,
    "macaroon_secret_key": "not-used",
    "form_secret": "not-used",
    "suppress_key_server_warning": True,
    "spam_checker": [],
    "experimental_features": {"msc3266_enabled": True},
    "admin_contact": "mailto:admin@example.com",
    "enable_ephemeral_messages": False,
}

#: Keys the issue lists, which Vignette implements (no warning for these).
IMPLEMENTED = {
    "enable_media_repo": True,
    "rc_joins": {"local": {"per_second": 0.1, "burst_count": 10}, "remote": {"per_second": 0.01}},
    "rc_joins_per_room": {"per_second": 1, "burst_count": 10},
    "rc_invites": {"per_room": {"per_second": 0.3}, "per_user": {"burst_count": 5},
                   "per_issuer": {"per_second": 0.3, "burst_count": 10}},
    "rc_room_creation": {"per_second": 0.016, "burst_count": 10},
    "rc_presence": {"per_user": {"per_second": 0.1, "burst_count": 1}},
    "rc_key_requests": {"per_second": 20, "burst_count": 100},
    "rc_3pid_validation": {"per_second": 0.003, "burst_count": 5},
    "rc_admin_redaction": {"per_second": 1, "burst_count": 50},
    "rc_media_create": {"per_second": 10, "burst_count": 50},
    "rc_profile": {"per_second": 0.1, "burst_count": 10},
    "rc_user_directory": {"per_second": 0.016, "burst_count": 200},
    "rc_reports": {"per_second": 1, "burst_count": 5},
    "rc_delayed_event_mgmt": {"per_second": 1, "burst_count": 5},
    "rc_federation": {"window_size": 1000, "sleep_limit": 10, "sleep_delay": 500, "reject_limit": 50,
                      "concurrent": 3},
    "room_list_publication_rules": [{"user_id": "@admin:test.local", "action": "allow"}, {"action": "deny"}],
    "alias_creation_rules": [{"alias": "#*:test.local"}],
    "allow_device_name_lookup_over_federation": False,
    "federation_ip_range_blacklist": ["10.0.0.0/8", "192.168.0.0/16"],
    "limit_remote_rooms": {"enabled": True, "complexity": 0.5, "complexity_error": "Too big", "admins_can_join": True},
    "auto_join_rooms": ["#welcome:test.local"],
    "autocreate_auto_join_rooms": True,
    "user_directory": {"enabled": True, "search_all_users": True, "prefer_local_users": True},
    "max_avatar_size": "10M",
    "allowed_avatar_mimetypes": ["image/png", "image/jpeg"],
    "require_auth_for_profile_requests": True,
    "forget_rooms_on_leave": True,
    # Synapse's older flat spelling of rc_federation (folded in, since rc_federation is given: dropped).
    "federation_rc_window_size": 1000,
}


def ignored_line(key: str) -> str:
    return f"ignored: {key} (Synapse setting, not supported yet)"


def synapse_style_config(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    database = fresh_database_config("sqlite3", tmp_path)
    path = write_config(tmp_path, database, **SYNAPSE_ONLY, **IMPLEMENTED)
    config = yaml.safe_load(path.read_text())
    config["listeners"][0]["tag"] = "main"  # a Synapse listener key
    config["database"]["txn_limit"] = 0  # a Synapse database key
    path.write_text(yaml.safe_dump(config))
    return path, database


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "homeserver", *args], capture_output=True, text=True,
                          timeout=60, env=server_env())


def test_the_key_list_names_its_synapse_version() -> None:
    assert SYNAPSE_VERSION.count(".") == 2
    assert {"rc_joins", "federation_ip_range_blacklist", "url_preview_enabled", "log_config"} <= SYNAPSE_TOP_LEVEL_KEYS
    assert "rc_profile" not in SYNAPSE_TOP_LEVEL_KEYS  # Vignette's own key


def test_a_synapse_config_starts_with_one_warning_per_ignored_key(tmp_path: Path) -> None:
    path, database = synapse_style_config(tmp_path)
    server = RunningServer(config_path=path, directory=tmp_path, server_name="test.local")
    try:
        server.start()
        assert requests.get(server.url("/_matrix/client/versions"), timeout=10).status_code == 200
    finally:
        server.stop()
        drop_database(database)
    lines = (tmp_path / "stderr.log").read_text().splitlines()
    warned = [line.removeprefix("vignette: ") for line in lines if "ignored:" in line]
    expected = [ignored_line(key) for key in sorted(SYNAPSE_ONLY)]
    expected += [ignored_line("listeners[0].tag"), ignored_line("database.txn_limit")]
    assert sorted(warned) == sorted(expected)
    assert not any("Traceback" in line for line in lines)


def test_check_config_accepts_it_without_starting(tmp_path: Path) -> None:
    path, database = synapse_style_config(tmp_path)
    result = run("-c", str(path), "--check-config")
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout
    assert sum("ignored:" in line for line in result.stderr.splitlines()) == len(SYNAPSE_ONLY) + 2
    # Nothing was started: no pid file, no database file.
    assert not (tmp_path / "homeserver.pid").exists()
    assert not Path(database["args"]["database"]).exists()


TYPOS = [
    ({"rc_mesage": {"per_second": 1}}, "rc_mesage: unknown key (did you mean rc_message?)"),
    ({"rc_joins": {"lcoal": {"per_second": 1}}}, "rc_joins.lcoal: unknown key (did you mean local?)"),
    ({"url_preview_enabeld": True}, "url_preview_enabeld: unknown key (did you mean url_preview_enabled?)"),
    ({"forget_room_on_leave": True}, "did you mean forget_rooms_on_leave?"),
    ({"user_directory": {"search_all_user": True}}, "user_directory.search_all_user: unknown key (did you mean"
                                                    " search_all_users?)"),
    ({"zzzz_qqqq": 1}, "zzzz_qqqq: unknown key (config.sample.yaml lists every key)"),
]


@pytest.mark.parametrize(("change", "message"), TYPOS, ids=[next(iter(c)) for c, _ in TYPOS])
def test_a_typo_is_an_error_naming_the_nearest_key(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    database = fresh_database_config("sqlite3", tmp_path)
    path = write_config(tmp_path, database, **change)
    for args in (("-c", str(path)), ("-c", str(path), "--check-config")):
        result = run(*args)
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("vignette: config error: ")
        assert message in lines[0]


@pytest.mark.parametrize(("change", "message"), [
    ({"rc_joins": {"local": {"per_second": 0}}}, "rc_joins.local.per_second: expected a number greater than zero"),
    ({"rc_federation": {"concurrent": "many"}}, "rc_federation.concurrent: expected an integer"),
    ({"auto_join_rooms": ["lobby"]}, "auto_join_rooms: expected room aliases"),
    ({"autocreate_auto_join_room_preset": "secret"}, "autocreate_auto_join_room_preset: expected one of"),
    ({"auto_join_rooms": ["#a:test.local"], "autocreate_auto_join_room_preset": "private_chat"},
     "autocreate_auto_join_room_preset: a private preset needs auto_join_mxid_localpart"),
    ({"room_list_publication_rules": [{"action": "maybe"}]}, "room_list_publication_rules[0].action: expected one of"),
    ({"alias_creation_rules": [{"alais": "#*"}]}, "alias_creation_rules[0].alais: unknown key (did you mean alias?)"),
    ({"federation_ip_range_blacklist": ["10.0.0.0/99"]}, "federation_ip_range_blacklist: expected IP ranges"),
    ({"max_avatar_size": "huge"}, "max_avatar_size: expected a size"),
    ({"allowed_avatar_mimetypes": ["png"]}, "allowed_avatar_mimetypes: expected MIME types"),
    ({"limit_remote_rooms": {"complexity": "high"}}, "limit_remote_rooms.complexity: expected a number"),
])
def test_bad_values_of_the_new_keys(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    database = fresh_database_config("sqlite3", tmp_path)
    result = run("-c", str(write_config(tmp_path, database, **change)), "--check-config")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr


def test_check_config_reports_a_missing_file_and_a_bad_log_config(tmp_path: Path) -> None:
    result = run("-c", str(tmp_path / "absent.yaml"), "--check-config")
    assert result.returncode == 1 and "does not exist" in result.stderr
    log_config = tmp_path / "log.yaml"
    log_config.write_text("version: 1\nhandlers:\n  remote:\n    class: synapse.logging.RemoteHandler\n")
    database = fresh_database_config("sqlite3", tmp_path)
    result = run("-c", str(write_config(tmp_path, database, log_config=str(log_config))), "--check-config")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "log_config:" in result.stderr and "synapse.logging.RemoteHandler" in result.stderr
    log_config.write_text(yaml.safe_dump({"version": 1, "handlers": {"f": {
        "class": "logging.FileHandler", "filename": str(tmp_path / "no-such-dir" / "x.log")}}}))
    config_path = write_config(tmp_path, database, log_config=str(log_config))
    for args in (("-c", str(config_path)), ("-c", str(config_path), "--check-config")):
        result = run(*args)
        assert result.returncode == 1
        assert result.stderr.strip().splitlines() == [
            f"vignette: config error: log_config: {log_config}: handlers.f.filename: the directory of"
            f" {tmp_path / 'no-such-dir' / 'x.log'} does not exist"]
    result = run("-c", str(write_config(tmp_path, database, logging={"file": str(tmp_path / "nope" / "x.log")})),
                 "--check-config")
    assert result.returncode == 1 and "logging.file: the directory of" in result.stderr


def minimal(**extra: Any) -> dict[str, Any]:
    return {"server_name": "example.com", "signing_key_path": "unused", **extra}


def test_partial_sections_keep_their_own_defaults() -> None:
    config = parse_config(minimal(rc_joins={"local": {"per_second": 1}}, rc_message={"burst_count": 20},
                                  rc_login={"address": {"burst_count": 2}}))
    assert (config.rc_joins.local.per_second, config.rc_joins.local.burst_count) == (1, 10)
    assert (config.rc_joins.remote.per_second, config.rc_joins.remote.burst_count) == (0.01, 10)
    assert (config.rc_message.per_second, config.rc_message.burst_count) == (0.2, 20)
    assert (config.rc_login.address.per_second, config.rc_login.address.burst_count) == (0.003, 2)
    assert config.rc_admin_redaction is None


def test_synapse_legacy_flat_rate_limit_keys_fill_their_sections() -> None:
    config = parse_config(minimal(rc_messages_per_second=0.5, rc_message_burst_count=30,
                                  federation_rc_window_size=2000, federation_rc_concurrent=5))
    assert (config.rc_message.per_second, config.rc_message.burst_count) == (0.5, 30)
    assert (config.rc_federation.window_size, config.rc_federation.concurrent) == (2000, 5)
    assert config.rc_federation.reject_limit == 50
    # Given both ways, the section wins, as in Synapse.
    config = parse_config(minimal(rc_message={"per_second": 2}, rc_messages_per_second=0.5))
    assert config.rc_message.per_second == 2


def test_federation_ip_range_blacklist_follows_synapse() -> None:
    plain = parse_config(minimal(ip_range_blacklist=["10.0.0.0/8"], ip_range_whitelist=["10.1.0.0/16"]))
    assert plain.federation_ip_ranges() == (["10.0.0.0/8"], ["10.1.0.0/16"])
    legacy = parse_config(minimal(ip_range_blacklist=["10.0.0.0/8"], ip_range_whitelist=["10.1.0.0/16"],
                                  federation_ip_range_blacklist=["192.168.0.0/16"]))
    blocked, allowed = legacy.federation_ip_ranges()
    assert blocked == ["192.168.0.0/16", "0.0.0.0/32", "::/128"]
    assert allowed == []  # the whitelist never applied to the old federation-only key
    assert legacy.ip_range_blacklist == ["10.0.0.0/8"]  # other outbound requests are unchanged


def test_directory_rules_match_globs_in_order() -> None:
    rules = [DirectoryRule(user_id="@bad:*", action="deny"), DirectoryRule(alias="#public-*"),
             DirectoryRule(room_id="!ok*", alias="*")]
    assert not rules_allow(rules, "@bad:example.com", "!ok1", [], unset_allows=False)
    assert rules_allow(rules, "@alice:example.com", "!x", ["#Public-Chat:example.com"], unset_allows=False)
    assert not rules_allow(rules, "@alice:example.com", "!x", ["#other:example.com"], unset_allows=False)
    assert not rules_allow(rules, "@alice:example.com", "!x", [], unset_allows=False)  # no alias to match
    assert rules_allow(rules, "@alice:example.com", "!ok2", [], unset_allows=False)
    assert rules_allow(None, "@a:b", "!c", [], unset_allows=True)
    assert not rules_allow(None, "@a:b", "!c", [], unset_allows=False)
    assert not rules_allow([], "@a:b", "!c", [], unset_allows=True)  # an empty list denies everything
    assert DirectoryRule(user_id="@a?c:*").matches("@abc:x", "!r", []) is True
    assert DirectoryRule(user_id="@a.c:*").matches("@abc:x", "!r", []) is False  # `.` is literal


def test_missing_signing_key_still_fails_check_config(tmp_path: Path) -> None:
    database = fresh_database_config("sqlite3", tmp_path)
    path = write_config(tmp_path, database)
    (tmp_path / "signing.key").unlink()
    result = run("-c", str(path), "--check-config")
    assert result.returncode == 1 and "signing_key_path:" in result.stderr


def test_parse_config_collects_warnings_in_order() -> None:
    warnings: list[str] = []
    parse_config(minimal(report_stats=True, presence={"enabled": False, "include_offline_users_on_sync": True}),
                 warnings)
    assert warnings == [ignored_line("report_stats"), ignored_line("presence.include_offline_users_on_sync")]
    with pytest.raises(ConfigError, match=r"presence.enabld: unknown key \(did you mean enabled\?\)"):
        parse_config(minimal(presence={"enabld": True}))

