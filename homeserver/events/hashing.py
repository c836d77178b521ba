"""Content hashes, reference hashes and event IDs (server-server API, "Signing Events")."""

from __future__ import annotations

import hashlib
from typing import Any

from homeserver.events.canonical_json import encode_canonical_json
from homeserver.events.redaction import redact_pdu
from homeserver.events.room_versions import EventFormat, RoomVersion
from homeserver.events.unpadded_base64 import decode_base64, encode_base64


def compute_content_hash(pdu: dict[str, Any]) -> bytes:
    """SHA-256 over the full event without `unsigned`, `signatures` and `hashes`."""
    hashed = {k: v for k, v in pdu.items() if k not in ("unsigned", "signatures", "hashes")}
    return hashlib.sha256(encode_canonical_json(hashed)).digest()


def add_content_hash(pdu: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of the PDU with `hashes.sha256` set to its content hash."""
    hashed = dict(pdu)
    hashed["hashes"] = {"sha256": encode_base64(compute_content_hash(pdu))}
    return hashed


def check_content_hash(pdu: dict[str, Any]) -> bool:
    """True if `hashes.sha256` is present and matches the content hash."""
    hashes = pdu.get("hashes")
    if not isinstance(hashes, dict):
        return False
    claimed = hashes.get("sha256")
    if not isinstance(claimed, str):
        return False
    try:
        claimed_bytes = decode_base64(claimed)
    except ValueError:
        return False
    return claimed_bytes == compute_content_hash(pdu)


def pdu_after_content_hash_check(pdu: dict[str, Any], room_version: RoomVersion) -> dict[str, Any]:
    """The spec rule: a PDU whose content hash is wrong is kept only in redacted form.

    Call this after the signatures have been verified (they cover the redacted form).
    """
    if check_content_hash(pdu):
        return pdu
    return redact_pdu(pdu, room_version)


def compute_reference_hash(pdu: dict[str, Any], room_version: RoomVersion) -> bytes:
    """SHA-256 over the redacted event without `signatures` and `unsigned`."""
    redacted = redact_pdu(pdu, room_version)
    redacted.pop("signatures", None)
    redacted.pop("unsigned", None)
    return hashlib.sha256(encode_canonical_json(redacted)).digest()


def compute_event_id(pdu: dict[str, Any], room_version: RoomVersion) -> str:
    """The event ID derived from the reference hash (room versions 3 and later).

    Raises ValueError for v1/v2, whose event IDs are chosen by the origin server.
    """
    if room_version.event_format is EventFormat.V1:
        raise ValueError(f"room version {room_version.identifier} event IDs are not hashes")
    urlsafe = room_version.event_format is EventFormat.V3
    return "$" + encode_base64(compute_reference_hash(pdu, room_version), urlsafe=urlsafe)


def room_id_for_create_event_id(create_event_id: str) -> str:
    """v12: the room ID is the create event's ID with `!` in place of `$`."""
    return "!" + create_event_id[1:]
