"""The server-default push rules (spec "Predefined rules", with the legacy mention rules Synapse keeps).

Built per user (some rules name the user's ID or localpart). The order is the order of
evaluation; ``.m.rule.master`` comes before every user-defined override rule, the other
defaults after the user's rules of their kind.
"""

from __future__ import annotations

from typing import Any

KINDS = ("override", "content", "room", "sender", "underride")

NOTIFY = "notify"
SOUND_DEFAULT = {"set_tweak": "sound", "value": "default"}
SOUND_RING = {"set_tweak": "sound", "value": "ring"}
HIGHLIGHT = {"set_tweak": "highlight"}

MASTER = ".m.rule.master"


def _match(key: str, pattern: str) -> dict[str, Any]:
    return {"kind": "event_match", "key": key, "pattern": pattern}


def _rule(rule_id: str, conditions: list[dict[str, Any]], actions: list[Any],
          enabled: bool = True) -> dict[str, Any]:
    return {"rule_id": rule_id, "default": True, "enabled": enabled,
            "conditions": conditions, "actions": actions}


def default_override(user_id: str) -> list[dict[str, Any]]:
    """Every default override rule, ``.m.rule.master`` first."""
    return [
        _rule(MASTER, [], [], enabled=False),
        _rule(".m.rule.suppress_notices", [_match("content.msgtype", "m.notice")], []),
        _rule(".m.rule.invite_for_me", [
            _match("type", "m.room.member"),
            _match("content.membership", "invite"),
            _match("state_key", user_id),
        ], [NOTIFY, SOUND_DEFAULT]),
        _rule(".m.rule.member_event", [_match("type", "m.room.member")], []),
        _rule(".m.rule.is_user_mention", [
            {"kind": "event_property_contains", "key": "content.m\\.mentions.user_ids", "value": user_id},
        ], [NOTIFY, SOUND_DEFAULT, HIGHLIGHT]),
        _rule(".m.rule.contains_display_name", [{"kind": "contains_display_name"}],
              [NOTIFY, SOUND_DEFAULT, HIGHLIGHT]),
        _rule(".m.rule.is_room_mention", [
            {"kind": "event_property_is", "key": "content.m\\.mentions.room", "value": True},
            {"kind": "sender_notification_permission", "key": "room"},
        ], [NOTIFY, HIGHLIGHT]),
        _rule(".m.rule.roomnotif", [
            _match("content.body", "@room"),
            {"kind": "sender_notification_permission", "key": "room"},
        ], [NOTIFY, HIGHLIGHT]),
        _rule(".m.rule.tombstone", [_match("type", "m.room.tombstone"), _match("state_key", "")],
              [NOTIFY, HIGHLIGHT]),
        _rule(".m.rule.reaction", [_match("type", "m.reaction")], []),
        _rule(".m.rule.room.server_acl", [_match("type", "m.room.server_acl"), _match("state_key", "")], []),
        _rule(".m.rule.suppress_edits", [
            {"kind": "event_property_is", "key": "content.m\\.relates_to.rel_type", "value": "m.replace"},
        ], []),
    ]


def default_content(user_id: str) -> list[dict[str, Any]]:
    localpart = user_id[1:].split(":", 1)[0]
    return [{"rule_id": ".m.rule.contains_user_name", "default": True, "enabled": True,
             "pattern": localpart, "actions": [NOTIFY, SOUND_DEFAULT, HIGHLIGHT]}]


def default_underride() -> list[dict[str, Any]]:
    one_to_one = {"kind": "room_member_count", "is": "2"}
    return [
        _rule(".m.rule.call", [_match("type", "m.call.invite")], [NOTIFY, SOUND_RING]),
        _rule(".m.rule.encrypted_room_one_to_one", [one_to_one, _match("type", "m.room.encrypted")],
              [NOTIFY, SOUND_DEFAULT]),
        _rule(".m.rule.room_one_to_one", [one_to_one, _match("type", "m.room.message")],
              [NOTIFY, SOUND_DEFAULT]),
        _rule(".m.rule.message", [_match("type", "m.room.message")], [NOTIFY]),
        _rule(".m.rule.encrypted", [_match("type", "m.room.encrypted")], [NOTIFY]),
    ]


def default_rules(user_id: str) -> dict[str, list[dict[str, Any]]]:
    """The default rules of each kind, in evaluation order."""
    return {"override": default_override(user_id), "content": default_content(user_id),
            "room": [], "sender": [], "underride": default_underride()}
