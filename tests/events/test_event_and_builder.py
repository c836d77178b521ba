"""The Event contract, the room version registry and the event builder."""

from __future__ import annotations

import nacl.signing
import pytest

from homeserver.events.builder import ServerSigningKey, build_event
from homeserver.events.event import Event, InvalidEventError
from homeserver.events.hashing import check_content_hash
from homeserver.events.identifiers import is_valid_event_id, is_valid_room_id
from homeserver.events.room_versions import (
    DEFAULT_ROOM_VERSION,
    KNOWN_ROOM_VERSIONS,
    EventFormat,
    RedactionAlgorithm,
    RoomVersions,
    StateResAlgorithm,
)
from homeserver.events.signing import verify_event_signatures

KEY = ServerSigningKey("hs.example", "ed25519:k1", nacl.signing.SigningKey.generate())
VERIFY_KEYS = {"hs.example": {"ed25519:k1": KEY.signing_key.verify_key}}


def test_registry() -> None:
    assert list(KNOWN_ROOM_VERSIONS) == [str(n) for n in range(1, 13)]
    assert DEFAULT_ROOM_VERSION == "12"
    v = KNOWN_ROOM_VERSIONS
    assert [v[k].event_format for k in ("1", "2", "3", "4", "12")] == [
        EventFormat.V1,
        EventFormat.V1,
        EventFormat.V2,
        EventFormat.V3,
        EventFormat.V3,
    ]
    assert [v[str(n)].redaction_algorithm.value for n in range(1, 13)] == [
        1, 1, 1, 1, 1, 6, 6, 6, 9, 9, 11, 11,
    ]  # fmt: skip
    assert v["1"].state_res is StateResAlgorithm.V1
    assert v["2"].state_res is v["11"].state_res is StateResAlgorithm.V2
    assert v["12"].state_res is StateResAlgorithm.V2_1
    assert [n for n in range(1, 13) if v[str(n)].knock_join_rule] == list(range(7, 13))
    assert [n for n in range(1, 13) if v[str(n)].restricted_join_rule] == list(range(8, 13))
    assert [n for n in range(1, 13) if v[str(n)].knock_restricted_join_rule] == [10, 11, 12]
    assert [n for n in range(1, 13) if v[str(n)].enforce_int_power_levels] == [10, 11, 12]
    assert [n for n in range(1, 13) if v[str(n)].strict_canonical_json] == list(range(6, 13))
    assert [n for n in range(1, 13) if v[str(n)].implicit_room_creator] == [11, 12]
    assert [n for n in range(1, 13) if v[str(n)].privileged_creators] == [12]
    assert v["11"].redaction_algorithm is RedactionAlgorithm.V11
    assert hash(v["12"]) == hash(RoomVersions.V12)


def test_v1_event_reads_carried_id_and_normalises_refs() -> None:
    pdu = {
        "event_id": "$abc:hs.example",
        "type": "m.room.redaction",
        "room_id": "!r:hs.example",
        "sender": "@u:hs.example",
        "content": {},
        "redacts": "$old:hs.example",
        "prev_events": [["$p1:hs.example", {"sha256": "x"}]],
        "auth_events": [["$a1:hs.example", {}], ["$a2:hs.example", {}]],
        "depth": 7,
        "origin_server_ts": 99,
    }
    event = Event.from_pdu(pdu, RoomVersions.V1)
    assert event.event_id == "$abc:hs.example"
    assert event.prev_event_ids == ["$p1:hs.example"]
    assert event.auth_event_ids == ["$a1:hs.example", "$a2:hs.example"]
    assert event.redacts == "$old:hs.example"
    assert event.depth == 7 and event.origin_server_ts == 99
    assert not event.is_state() and event.state_key is None and event.membership is None
    with pytest.raises(InvalidEventError):
        Event.from_pdu({k: v for k, v in pdu.items() if k != "event_id"}, RoomVersions.V2)


def test_equality_and_hash_by_event_id() -> None:
    a = Event.from_pdu({"type": "x", "content": {"a": 1}}, RoomVersions.V10, "$same")
    b = Event.from_pdu({"type": "y"}, RoomVersions.V10, "$same")
    assert a == b and len({a, b}) == 1
    assert a != Event.from_pdu({"type": "x"}, RoomVersions.V10, "$other")


def test_redacts_moves_into_content_in_v11() -> None:
    pdu = {"type": "m.room.redaction", "content": {"redacts": "$in"}, "redacts": "$top"}
    assert Event.from_pdu(pdu, RoomVersions.V10, "$r").redacts == "$top"
    assert Event.from_pdu(pdu, RoomVersions.V11, "$r").redacts == "$in"


@pytest.mark.parametrize("version", list(KNOWN_ROOM_VERSIONS))
def test_builder_round_trip(version: str) -> None:
    room_version = KNOWN_ROOM_VERSIONS[version]
    creator = "@alice:hs.example"
    create_content = {"room_version": version}
    if not room_version.implicit_room_creator:
        create_content["creator"] = creator
    create = build_event(
        room_version=room_version,
        event_type="m.room.create",
        sender=creator,
        content=create_content,
        state_key="",
        room_id=None if room_version.room_id_is_create_event_hash else "!room:hs.example",
        prev_event_ids=[],
        auth_event_ids=[],
        depth=1,
        origin_server_ts=1000,
        key=KEY,
    )
    assert is_valid_event_id(create.event_id, room_version)
    assert is_valid_room_id(create.room_id, room_version)
    assert check_content_hash(create.pdu)
    verify_event_signatures(create.pdu, room_version, VERIFY_KEYS)
    if room_version.room_id_is_create_event_hash:
        assert "room_id" not in create.pdu
        assert create.room_id == "!" + create.event_id[1:]

    redaction = build_event(
        room_version=room_version,
        event_type="m.room.redaction",
        sender=creator,
        content={"reason": "oops"},
        redacts=create.event_id,
        room_id=create.room_id,
        prev_event_ids=[create.event_id],
        auth_event_ids=[create.event_id],
        depth=2,
        origin_server_ts=1001,
        key=KEY,
    )
    assert redaction.redacts == create.event_id
    assert redaction.prev_event_ids == [create.event_id]
    assert redaction.room_id == create.room_id
    verify_event_signatures(redaction.pdu, room_version, VERIFY_KEYS)
    # Round trip through the wire format gives the same event ID.
    wire = {k: v for k, v in redaction.pdu.items()}
    assert Event.from_pdu(wire, room_version).event_id == redaction.event_id


def test_builder_requires_room_id_outside_v12_create() -> None:
    with pytest.raises(ValueError):
        build_event(
            room_version=RoomVersions.V11,
            event_type="m.room.create",
            sender="@a:hs.example",
            content={},
            state_key="",
            room_id=None,
            prev_event_ids=[],
            auth_event_ids=[],
            depth=1,
            origin_server_ts=1,
            key=KEY,
        )
