"""Structural PDU checks per room version."""

from __future__ import annotations

import nacl.signing
import pytest

from homeserver.events.builder import ServerSigningKey, build_event
from homeserver.events.event import Event
from homeserver.events.pdu_format import PDUFormatError, check_pdu_format
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion

KEY = ServerSigningKey("hs.example", "ed25519:k", nacl.signing.SigningKey.generate())


def _create(room_version: RoomVersion) -> Event:
    content = {"room_version": room_version.identifier}
    if not room_version.implicit_room_creator:
        content["creator"] = "@a:hs.example"
    hashed_room_id = room_version.room_id_is_create_event_hash
    return build_event(
        room_version=room_version,
        event_type="m.room.create",
        sender="@a:hs.example",
        content=content,
        state_key="",
        room_id=None if hashed_room_id else "!r:hs.example",
        prev_event_ids=[],
        auth_event_ids=[],
        depth=1,
        origin_server_ts=5,
        key=KEY,
    )


def _message(room_version: RoomVersion, **fields: object) -> dict:
    create = _create(room_version)
    event = build_event(
        room_version=room_version,
        event_type="m.room.message",
        sender="@a:hs.example",
        content={"body": "hi"},
        room_id=create.room_id,
        prev_event_ids=[create.event_id],
        auth_event_ids=[create.event_id],
        depth=2,
        origin_server_ts=6,
        key=KEY,
    )
    return {**event.pdu, **fields}


@pytest.mark.parametrize("version", list(KNOWN_ROOM_VERSIONS))
def test_built_events_are_well_formed(version: str) -> None:
    room_version = KNOWN_ROOM_VERSIONS[version]
    check_pdu_format(_create(room_version).pdu, room_version)
    check_pdu_format(_message(room_version), room_version)


@pytest.mark.parametrize("version", list(KNOWN_ROOM_VERSIONS))
@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"sender": "alice"}, "sender"),
        ({"type": 5}, "type"),
        ({"content": []}, "content"),
        ({"depth": -1}, "depth"),
        ({"depth": True}, "depth"),
        ({"origin_server_ts": "5"}, "origin_server_ts"),
        ({"prev_events": "x"}, "prev_events"),
        ({"auth_events": [5]}, "auth_events"),
        ({"state_key": 5}, "state_key"),
        ({"room_id": "not-a-room"}, "room_id"),
        ({"type": "x" * 256}, "longer than"),
        ({"content": {"body": "x" * 70000}}, "bytes"),
    ],
)
def test_malformed_fields(version: str, fields: dict, error: str) -> None:
    room_version = KNOWN_ROOM_VERSIONS[version]
    with pytest.raises(PDUFormatError, match=error):
        check_pdu_format(_message(room_version, **fields), room_version)


@pytest.mark.parametrize("version", list(KNOWN_ROOM_VERSIONS))
def test_strict_json_from_v6(version: str) -> None:
    room_version = KNOWN_ROOM_VERSIONS[version]
    loose = _message(room_version, content={"n": 2**60})
    if room_version.strict_canonical_json:
        with pytest.raises(PDUFormatError, match="invalid JSON"):
            check_pdu_format(loose, room_version)
    else:
        check_pdu_format(loose, room_version)


def test_v1_needs_event_id_and_pair_refs() -> None:
    v1 = KNOWN_ROOM_VERSIONS["1"]
    pdu = _message(v1)
    with pytest.raises(PDUFormatError, match="event_id"):
        check_pdu_format({k: v for k, v in pdu.items() if k != "event_id"}, v1)
    with pytest.raises(PDUFormatError, match="prev_events"):
        check_pdu_format(dict(pdu, prev_events=["$x:hs.example"]), v1)


def test_v12_room_ids() -> None:
    v12 = KNOWN_ROOM_VERSIONS["12"]
    with pytest.raises(PDUFormatError, match="room_id"):
        check_pdu_format(_message(v12, room_id="!r:hs.example"), v12)


@pytest.mark.parametrize("version", ["10", "11"])
def test_redaction_needs_redacts(version: str) -> None:
    room_version = KNOWN_ROOM_VERSIONS[version]
    pdu = _message(room_version, type="m.room.redaction", content={})
    with pytest.raises(PDUFormatError, match="redacts"):
        check_pdu_format(pdu, room_version)
    fixed = (
        dict(pdu, content={"redacts": "$" + "a" * 43})
        if room_version.redacts_in_content
        else dict(pdu, redacts="$" + "a" * 43)
    )
    check_pdu_format(fixed, room_version)
