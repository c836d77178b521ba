"""The redaction algorithm per variant (v1, v6, v9, v11), key by key."""

from __future__ import annotations

import pytest

from homeserver.events.redaction import redact_pdu
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersions

TOP_LEVEL = {
    "event_id": "$e:x",
    "type": "m.room.message",
    "room_id": "!r:x",
    "sender": "@u:x",
    "state_key": "s",
    "content": {"body": "hi"},
    "hashes": {"sha256": "h"},
    "signatures": {"x": {}},
    "depth": 1,
    "prev_events": [],
    "prev_state": [],
    "auth_events": [],
    "origin": "x",
    "origin_server_ts": 1,
    "membership": "join",
    "unsigned": {"age": 1},
    "redacts": "$other:x",
    "custom": 1,
}


@pytest.mark.parametrize("version", list(KNOWN_ROOM_VERSIONS))
def test_top_level_keys(version: str) -> None:
    redacted = redact_pdu(TOP_LEVEL, KNOWN_ROOM_VERSIONS[version])
    dropped = {"unsigned", "redacts", "custom"}
    if int(version) >= 11:
        dropped |= {"origin", "membership", "prev_state"}
    assert set(redacted) == set(TOP_LEVEL) - dropped
    assert redacted["content"] == {}


def _content_after(event_type: str, content: dict, version: str) -> dict:
    pdu = {"type": event_type, "content": content, "sender": "@u:x"}
    return redact_pdu(pdu, KNOWN_ROOM_VERSIONS[version])["content"]


POWER_LEVELS = {
    "ban": 50,
    "events": {"m.room.name": 50},
    "events_default": 0,
    "invite": 0,
    "kick": 50,
    "notifications": {"room": 50},
    "redact": 50,
    "state_default": 50,
    "users": {"@u:x": 100},
    "users_default": 0,
}


@pytest.mark.parametrize(
    ("event_type", "content", "kept_by_version"),
    [
        (
            "m.room.member",
            {
                "membership": "join",
                "displayname": "U",
                "join_authorised_via_users_server": "@m:x",
                "third_party_invite": {"signed": {"mxid": "@u:x"}, "display_name": "d"},
            },
            {
                "1": {"membership": "join"},
                "6": {"membership": "join"},
                "9": {"membership": "join", "join_authorised_via_users_server": "@m:x"},
                "11": {
                    "membership": "join",
                    "join_authorised_via_users_server": "@m:x",
                    "third_party_invite": {"signed": {"mxid": "@u:x"}},
                },
            },
        ),
        (
            "m.room.create",
            {"creator": "@u:x", "room_version": "1", "m.federate": False},
            {
                "1": {"creator": "@u:x"},
                "6": {"creator": "@u:x"},
                "9": {"creator": "@u:x"},
                "11": {"creator": "@u:x", "room_version": "1", "m.federate": False},
            },
        ),
        (
            "m.room.join_rules",
            {"join_rule": "restricted", "allow": [{"type": "m.room_membership"}], "x": 1},
            {
                "1": {"join_rule": "restricted"},
                "6": {"join_rule": "restricted"},
                "9": {"join_rule": "restricted", "allow": [{"type": "m.room_membership"}]},
                "11": {"join_rule": "restricted", "allow": [{"type": "m.room_membership"}]},
            },
        ),
        (
            "m.room.power_levels",
            POWER_LEVELS,
            {
                "1": {
                    k: v for k, v in POWER_LEVELS.items() if k not in ("invite", "notifications")
                },
                "6": {
                    k: v for k, v in POWER_LEVELS.items() if k not in ("invite", "notifications")
                },
                "9": {
                    k: v for k, v in POWER_LEVELS.items() if k not in ("invite", "notifications")
                },
                "11": {k: v for k, v in POWER_LEVELS.items() if k != "notifications"},
            },
        ),
        (
            "m.room.aliases",
            {"aliases": ["#a:x"], "other": 1},
            {"1": {"aliases": ["#a:x"]}, "6": {}, "9": {}, "11": {}},
        ),
        (
            "m.room.history_visibility",
            {"history_visibility": "shared", "other": 1},
            {v: {"history_visibility": "shared"} for v in ("1", "6", "9", "11")},
        ),
        (
            "m.room.redaction",
            {"redacts": "$e:x", "reason": "spam"},
            {"1": {}, "6": {}, "9": {}, "11": {"redacts": "$e:x"}},
        ),
        (
            "m.room.message",
            {"body": "hello", "msgtype": "m.text"},
            {"1": {}, "6": {}, "9": {}, "11": {}},
        ),
    ],
)
def test_content_keys(event_type: str, content: dict, kept_by_version: dict) -> None:
    variants = {"1": "1-5", "6": "6-8", "9": "9-10", "11": "11-12"}
    for first, span in variants.items():
        low, high = (int(x) for x in span.split("-"))
        for version in range(low, high + 1):
            assert _content_after(event_type, content, str(version)) == kept_by_version[first], (
                f"v{version}"
            )


def test_v11_member_third_party_invite_without_signed_is_dropped() -> None:
    content = {"membership": "invite", "third_party_invite": {"display_name": "d"}}
    assert _content_after("m.room.member", content, "11") == {"membership": "invite"}


def test_redaction_does_not_mutate_input() -> None:
    pdu = {"type": "m.room.member", "content": {"membership": "join", "displayname": "x"}}
    redact_pdu(pdu, RoomVersions.V12)
    assert pdu["content"] == {"membership": "join", "displayname": "x"}
