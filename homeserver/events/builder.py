"""Build a new, hashed and signed event in the wire format of its room version."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import nacl.signing

from homeserver.events.event import Event
from homeserver.events.room_versions import RoomVersion
from homeserver.events.signing import sign_event


@attrs.frozen(slots=True)
class ServerSigningKey:
    """A server's identity for signing: its name, the key ID (`ed25519:abc`) and the key."""

    server_name: str
    key_id: str
    signing_key: nacl.signing.SigningKey


def _refs(
    room_version: RoomVersion, event_ids: Sequence[str], hashes: Mapping[str, Mapping[str, str]]
) -> list[Any]:
    """v1/v2 reference other events as `[id, {hashes}]`; later versions by bare ID."""
    if room_version.event_id_carried_in_pdu:
        return [[event_id, dict(hashes.get(event_id, {}))] for event_id in event_ids]
    return list(event_ids)


def build_event(
    *,
    room_version: RoomVersion,
    event_type: str,
    sender: str,
    content: Mapping[str, Any],
    room_id: str | None,
    prev_event_ids: Sequence[str],
    auth_event_ids: Sequence[str],
    depth: int,
    origin_server_ts: int,
    key: ServerSigningKey,
    state_key: str | None = None,
    redacts: str | None = None,
    reference_hashes: Mapping[str, Mapping[str, str]] | None = None,
    event_id_localpart: str | None = None,
) -> Event:
    """Assemble, hash and sign a PDU; return it as an Event with its ID.

    `room_id` is None only for a v12 `m.room.create` (whose room ID derives from it).
    `redacts` lands top-level before v11 and in `content` from v11.
    `reference_hashes` gives v1/v2 the hashes to quote next to prev/auth event IDs;
    `event_id_localpart` fixes a v1/v2 event ID (random otherwise).
    """
    content = dict(content)
    pdu: dict[str, Any] = {
        "type": event_type,
        "sender": sender,
        "content": content,
        "prev_events": _refs(room_version, prev_event_ids, reference_hashes or {}),
        "auth_events": _refs(room_version, auth_event_ids, reference_hashes or {}),
        "depth": depth,
        "origin_server_ts": origin_server_ts,
    }
    if room_id is not None:
        pdu["room_id"] = room_id
    elif not (room_version.room_id_is_create_event_hash and event_type == "m.room.create"):
        raise ValueError("room_id may be omitted only for a v12 m.room.create event")
    if state_key is not None:
        pdu["state_key"] = state_key
    if redacts is not None:
        if room_version.redacts_in_content:
            content["redacts"] = redacts
        else:
            pdu["redacts"] = redacts
    if room_version.event_id_carried_in_pdu:
        localpart = event_id_localpart or secrets.token_urlsafe(12)
        pdu["event_id"] = f"${localpart}:{key.server_name}"
    signed = sign_event(pdu, room_version, key.server_name, key.key_id, key.signing_key)
    return Event.from_pdu(signed, room_version)
