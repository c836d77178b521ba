"""Shape checks on state event content that clients send (400 M_BAD_JSON on failure).

The auth rules would also reject some of these (as 403); checking the shape first
tells the client its JSON was wrong rather than that it lacked permission.
"""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError, bad_json
from homeserver.events.identifiers import is_valid_room_alias, is_valid_user_id
from homeserver.events.power_levels import NAMED_LEVELS

HISTORY_VISIBILITIES = ("world_readable", "shared", "invited", "joined")
MEMBERSHIPS = ("join", "invite", "leave", "ban", "knock")
MAX_POWER_LEVEL = 2**53 - 1


def bad_alias(message: str) -> MatrixError:
    return MatrixError(400, "M_BAD_ALIAS", message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_POWER_LEVEL


def _check_power_levels(content: dict[str, Any]) -> None:
    for name in NAMED_LEVELS:
        if name in content and not _is_int(content[name]):
            raise bad_json(f"power levels: {name} must be an integer")
    for name in ("events", "notifications", "users"):
        if name not in content:
            continue
        mapping = content[name]
        if not isinstance(mapping, dict):
            raise bad_json(f"power levels: {name} must be an object")
        for key, value in mapping.items():
            if not _is_int(value):
                raise bad_json(f"power levels: {name}[{key!r}] must be an integer")
            if name == "users" and not is_valid_user_id(key):
                raise bad_json(f"power levels: {key!r} in users is not a user ID")


def _check_join_rules(content: dict[str, Any]) -> None:
    if not isinstance(content.get("join_rule"), str):
        raise bad_json("join rules: join_rule must be a string")
    allow = content.get("allow")
    if allow is not None:
        if not isinstance(allow, list) or not all(isinstance(item, dict) for item in allow):
            raise bad_json("join rules: allow must be a list of objects")


def _check_history_visibility(content: dict[str, Any]) -> None:
    if content.get("history_visibility") not in HISTORY_VISIBILITIES:
        raise bad_json(f"history_visibility must be one of {', '.join(HISTORY_VISIBILITIES)}")


def _check_member(content: dict[str, Any]) -> None:
    if content.get("membership") not in MEMBERSHIPS:
        raise bad_json(f"membership must be one of {', '.join(MEMBERSHIPS)}")


def _check_canonical_alias(content: dict[str, Any]) -> None:
    alias = content.get("alias")
    if alias is not None and (not isinstance(alias, str) or not is_valid_room_alias(alias)):
        raise bad_alias(f"{alias!r} is not a valid room alias")
    alt = content.get("alt_aliases")
    if alt is not None:
        if not isinstance(alt, list) or not all(isinstance(a, str) and is_valid_room_alias(a) for a in alt):
            raise bad_alias("alt_aliases must be a list of room aliases")


def _check_string(field: str) -> Any:
    def check(content: dict[str, Any]) -> None:
        if field in content and not isinstance(content[field], str):
            raise bad_json(f"{field} must be a string")

    return check


_CHECKS = {
    "m.room.power_levels": _check_power_levels,
    "m.room.join_rules": _check_join_rules,
    "m.room.history_visibility": _check_history_visibility,
    "m.room.member": _check_member,
    "m.room.canonical_alias": _check_canonical_alias,
    "m.room.name": _check_string("name"),
    "m.room.topic": _check_string("topic"),
    "m.room.guest_access": _check_string("guest_access"),
}


def validate_state_content(event_type: str, content: dict[str, Any]) -> None:
    """Raise 400 M_BAD_JSON (or M_BAD_ALIAS) when known state content is malformed."""
    check = _CHECKS.get(event_type)
    if check is not None:
        check(content)
