"""Structural checks on a received PDU, per room version (before hashes, signatures, auth).

`Event.from_pdu` is deliberately lenient; the federation and client layers call
`check_pdu_format` on untrusted input so that every later stage can rely on field types.
"""

from __future__ import annotations

from typing import Any

from homeserver.events.canonical_json import (
    CanonicalJSONError,
    check_json_for_room_version,
    encode_canonical_json,
)
from homeserver.events.identifiers import is_valid_event_id, is_valid_room_id, is_valid_user_id
from homeserver.events.room_versions import RoomVersion

#: Spec size limits ("Size limits" in the client-server API).
MAX_PDU_BYTES = 65536
MAX_ID_BYTES = 255
MAX_DEPTH_LEGACY = 2**63 - 1
MAX_DEPTH_STRICT = 2**53 - 1


class PDUFormatError(ValueError):
    """The PDU is malformed for its room version; the message says which field."""


def _require(pdu: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = pdu.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise PDUFormatError(f"{key} is missing or has the wrong type")
    return value


def _check_refs(pdu: dict[str, Any], key: str, room_version: RoomVersion) -> None:
    refs = _require(pdu, key, list)
    for ref in refs:
        if room_version.event_id_carried_in_pdu:
            ok = (
                isinstance(ref, list)
                and len(ref) == 2
                and isinstance(ref[0], str)
                and isinstance(ref[1], dict)
            )
        else:
            ok = isinstance(ref, str) and is_valid_event_id(ref, room_version)
        if not ok:
            raise PDUFormatError(
                f"{key} has a malformed entry for room version {room_version.identifier}"
            )


def check_pdu_format(pdu: dict[str, Any], room_version: RoomVersion) -> None:
    """Raise PDUFormatError unless the PDU is well formed for its room version."""
    try:
        check_json_for_room_version(pdu, room_version)
        size = len(encode_canonical_json(pdu))
    except (CanonicalJSONError, TypeError, ValueError) as e:
        raise PDUFormatError(f"invalid JSON: {e}") from e
    if size > MAX_PDU_BYTES:
        raise PDUFormatError(f"PDU is {size} bytes, over {MAX_PDU_BYTES}")

    event_type = _require(pdu, "type", str)
    sender = _require(pdu, "sender", str)
    if not is_valid_user_id(sender):
        raise PDUFormatError("sender is not a valid user ID")
    _require(pdu, "content", dict)
    _require(pdu, "origin_server_ts", int)
    depth = _require(pdu, "depth", int)
    max_depth = MAX_DEPTH_STRICT if room_version.strict_canonical_json else MAX_DEPTH_LEGACY
    if not 0 <= depth <= max_depth:
        raise PDUFormatError("depth is out of range")
    _check_refs(pdu, "prev_events", room_version)
    _check_refs(pdu, "auth_events", room_version)
    if "state_key" in pdu:
        _require(pdu, "state_key", str)
    for key in ("type", "sender", "state_key", "room_id"):
        value = pdu.get(key)
        if isinstance(value, str) and len(value.encode("utf-8")) > MAX_ID_BYTES:
            raise PDUFormatError(f"{key} is longer than {MAX_ID_BYTES} bytes")

    v12_create = room_version.room_id_is_create_event_hash and event_type == "m.room.create"
    if not v12_create:
        room_id = _require(pdu, "room_id", str)
        if not is_valid_room_id(room_id, room_version):
            raise PDUFormatError("room_id is malformed for this room version")
    if room_version.event_id_carried_in_pdu:
        event_id = _require(pdu, "event_id", str)
        if not is_valid_event_id(event_id, room_version):
            raise PDUFormatError("event_id is malformed")
    if event_type == "m.room.redaction":
        container = pdu.get("content", {}) if room_version.redacts_in_content else pdu
        redacts = container.get("redacts")
        if not isinstance(redacts, str):
            raise PDUFormatError("m.room.redaction needs a string `redacts`")
