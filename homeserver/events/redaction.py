"""The redaction algorithm: which keys of an event survive, per room-version variant.

Used both to redact events for clients and to compute reference hashes and signatures,
so it must match the spec tables exactly.
"""

from __future__ import annotations

from typing import Any

from homeserver.events.room_versions import RedactionAlgorithm, RoomVersion

_TOP_LEVEL_KEYS_V1 = frozenset(
    {
        "event_id",
        "type",
        "room_id",
        "sender",
        "state_key",
        "content",
        "hashes",
        "signatures",
        "depth",
        "prev_events",
        "prev_state",
        "auth_events",
        "origin",
        "origin_server_ts",
        "membership",
    }
)
_TOP_LEVEL_KEYS_V11 = _TOP_LEVEL_KEYS_V1 - {"origin", "membership", "prev_state"}

_POWER_LEVEL_KEYS_V1 = (
    "ban",
    "events",
    "events_default",
    "kick",
    "redact",
    "state_default",
    "users",
    "users_default",
)

# Content keys kept, by algorithm then event type. `None` means "keep all content".
_CONTENT_KEYS: dict[RedactionAlgorithm, dict[str, tuple[str, ...] | None]] = {
    RedactionAlgorithm.V1: {
        "m.room.member": ("membership",),
        "m.room.create": ("creator",),
        "m.room.join_rules": ("join_rule",),
        "m.room.power_levels": _POWER_LEVEL_KEYS_V1,
        "m.room.aliases": ("aliases",),
        "m.room.history_visibility": ("history_visibility",),
    },
    RedactionAlgorithm.V6: {
        "m.room.member": ("membership",),
        "m.room.create": ("creator",),
        "m.room.join_rules": ("join_rule",),
        "m.room.power_levels": _POWER_LEVEL_KEYS_V1,
        "m.room.history_visibility": ("history_visibility",),
    },
    RedactionAlgorithm.V9: {
        "m.room.member": ("membership", "join_authorised_via_users_server"),
        "m.room.create": ("creator",),
        "m.room.join_rules": ("join_rule", "allow"),
        "m.room.power_levels": _POWER_LEVEL_KEYS_V1,
        "m.room.history_visibility": ("history_visibility",),
    },
    RedactionAlgorithm.V11: {
        "m.room.member": ("membership", "join_authorised_via_users_server"),
        "m.room.create": None,
        "m.room.join_rules": ("join_rule", "allow"),
        "m.room.power_levels": (*_POWER_LEVEL_KEYS_V1, "invite"),
        "m.room.history_visibility": ("history_visibility",),
        "m.room.redaction": ("redacts",),
    },
}


def redact_pdu(pdu: dict[str, Any], room_version: RoomVersion) -> dict[str, Any]:
    """Return a new dict holding only what the redaction algorithm keeps.

    The input is not modified; kept nested values are shared, not copied.
    """
    algorithm = room_version.redaction_algorithm
    top_keys = _TOP_LEVEL_KEYS_V11 if algorithm is RedactionAlgorithm.V11 else _TOP_LEVEL_KEYS_V1
    redacted = {k: v for k, v in pdu.items() if k in top_keys}

    content = pdu.get("content")
    if not isinstance(content, dict):
        content = {}
    event_type = pdu.get("type")
    kept = _CONTENT_KEYS[algorithm].get(event_type, ()) if isinstance(event_type, str) else ()
    if kept is None:
        new_content = dict(content)
    else:
        new_content = {k: content[k] for k in kept if k in content}
        if algorithm is RedactionAlgorithm.V11 and event_type == "m.room.member":
            third_party_invite = content.get("third_party_invite")
            if isinstance(third_party_invite, dict) and "signed" in third_party_invite:
                new_content["third_party_invite"] = {"signed": third_party_invite["signed"]}
    redacted["content"] = new_content
    return redacted
