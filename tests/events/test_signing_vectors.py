"""JSON signing, event signing, content and reference hashes against the spec vectors."""

from __future__ import annotations

import copy

import nacl.signing
import pytest

from homeserver.events.event import Event
from homeserver.events.hashing import (
    check_content_hash,
    compute_content_hash,
    compute_event_id,
    pdu_after_content_hash_check,
)
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersions
from homeserver.events.signing import (
    MAX_KEY_VALIDITY_MS,
    SignatureError,
    key_usable_for_event,
    required_signers,
    sign_event,
    sign_json,
    verify_event_signatures,
    verify_json_signature,
)
from homeserver.events.unpadded_base64 import decode_base64, encode_base64

SEED = decode_base64("YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
SIGNING_KEY = nacl.signing.SigningKey(SEED)
VERIFY_KEY = SIGNING_KEY.verify_key
SERVER = "domain"
KEY_ID = "ed25519:1"

MINIMAL_EVENT = {
    "room_id": "!x:domain",
    "sender": "@a:domain",
    "origin": "domain",
    "origin_server_ts": 1000000,
    "signatures": {},
    "hashes": {},
    "type": "X",
    "content": {},
    "prev_events": [],
    "auth_events": [],
    "depth": 3,
    "unsigned": {"age_ts": 1000000},
}
MINIMAL_EVENT_SIGNED = {
    "auth_events": [],
    "content": {},
    "depth": 3,
    "hashes": {"sha256": "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"},
    "origin": "domain",
    "origin_server_ts": 1000000,
    "prev_events": [],
    "room_id": "!x:domain",
    "sender": "@a:domain",
    "signatures": {
        "domain": {
            "ed25519:1": "KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg"
        }
    },
    "type": "X",
    "unsigned": {"age_ts": 1000000},
}
REDACTABLE_EVENT = {
    "content": {"body": "Here is the message content"},
    "event_id": "$0:domain",
    "origin": "domain",
    "origin_server_ts": 1000000,
    "type": "m.room.message",
    "room_id": "!r:domain",
    "sender": "@u:domain",
    "signatures": {},
    "unsigned": {"age_ts": 1000000},
}
REDACTABLE_EVENT_SIGNED = {
    "content": {"body": "Here is the message content"},
    "event_id": "$0:domain",
    "hashes": {"sha256": "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"},
    "origin": "domain",
    "origin_server_ts": 1000000,
    "type": "m.room.message",
    "room_id": "!r:domain",
    "sender": "@u:domain",
    "signatures": {
        "domain": {
            "ed25519:1": "Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA"
        }
    },
    "unsigned": {"age_ts": 1000000},
}
# The vectors were produced with the v1-v10 redaction algorithm (top-level `origin` kept).
VECTOR_ROOM_VERSIONS = [v for k, v in KNOWN_ROOM_VERSIONS.items() if int(k) <= 10]


def test_signing_key_seed_vector() -> None:
    assert len(SEED) == 32


def test_json_signing_empty_object() -> None:
    assert sign_json({}, SERVER, KEY_ID, SIGNING_KEY) == {
        "signatures": {
            "domain": {
                "ed25519:1": "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"
            }
        }
    }


def test_json_signing_with_data() -> None:
    assert sign_json({"one": 1, "two": "Two"}, SERVER, KEY_ID, SIGNING_KEY) == {
        "one": 1,
        "signatures": {
            "domain": {
                "ed25519:1": "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"
            }
        },
        "two": "Two",
    }


def test_json_signing_keeps_unsigned_out_of_signature() -> None:
    signed = sign_json({"one": 1, "unsigned": {"age": 5}}, SERVER, KEY_ID, SIGNING_KEY)
    signed["unsigned"] = {"age": 99}
    verify_json_signature(signed, SERVER, {KEY_ID: VERIFY_KEY})


def test_json_signature_verification_detects_tampering() -> None:
    signed = sign_json({"one": 1, "two": "Two"}, SERVER, KEY_ID, SIGNING_KEY)
    verify_json_signature(signed, SERVER, {KEY_ID: VERIFY_KEY})
    tampered = dict(signed, two="Three")
    with pytest.raises(SignatureError, match="bad signature"):
        verify_json_signature(tampered, SERVER, {KEY_ID: VERIFY_KEY})
    with pytest.raises(SignatureError, match="no signatures from other"):
        verify_json_signature(signed, "other", {KEY_ID: VERIFY_KEY})
    with pytest.raises(SignatureError, match="known key"):
        verify_json_signature(signed, SERVER, {"ed25519:2": VERIFY_KEY})
    wrong_key = nacl.signing.SigningKey.generate().verify_key
    with pytest.raises(SignatureError):
        verify_json_signature(signed, SERVER, {KEY_ID: wrong_key})


@pytest.mark.parametrize("room_version", VECTOR_ROOM_VERSIONS, ids=lambda v: f"v{v.identifier}")
@pytest.mark.parametrize(
    ("unsigned", "expected"),
    [(MINIMAL_EVENT, MINIMAL_EVENT_SIGNED), (REDACTABLE_EVENT, REDACTABLE_EVENT_SIGNED)],
    ids=["minimal", "redactable"],
)
def test_event_signing_vectors(room_version, unsigned: dict, expected: dict) -> None:
    original = copy.deepcopy(unsigned)
    assert sign_event(unsigned, room_version, SERVER, KEY_ID, SIGNING_KEY) == expected
    assert unsigned == original  # input untouched


def test_content_hash_vectors() -> None:
    assert (
        encode_base64(compute_content_hash(MINIMAL_EVENT))
        == MINIMAL_EVENT_SIGNED["hashes"]["sha256"]
    )
    assert check_content_hash(MINIMAL_EVENT_SIGNED)
    assert check_content_hash(REDACTABLE_EVENT_SIGNED)


def test_v11_signature_differs_because_origin_is_redacted() -> None:
    signed = sign_event(MINIMAL_EVENT, RoomVersions.V11, SERVER, KEY_ID, SIGNING_KEY)
    assert signed["hashes"] == MINIMAL_EVENT_SIGNED["hashes"]
    assert signed["signatures"] != MINIMAL_EVENT_SIGNED["signatures"]


def test_verify_signed_event_and_its_redacted_copy() -> None:
    keys = {SERVER: {KEY_ID: VERIFY_KEY}}
    verify_event_signatures(REDACTABLE_EVENT_SIGNED, RoomVersions.V1, keys)
    redacted = pdu_after_content_hash_check(
        dict(REDACTABLE_EVENT_SIGNED, content={"body": "changed"}), RoomVersions.V1
    )
    assert redacted["content"] == {}
    verify_event_signatures(redacted, RoomVersions.V1, keys)
    tampered = dict(REDACTABLE_EVENT_SIGNED, sender="@evil:domain")
    with pytest.raises(SignatureError):
        verify_event_signatures(tampered, RoomVersions.V1, keys)


def test_wrong_content_hash_means_redacted() -> None:
    good = pdu_after_content_hash_check(REDACTABLE_EVENT_SIGNED, RoomVersions.V1)
    assert good is REDACTABLE_EVENT_SIGNED
    bad = dict(REDACTABLE_EVENT_SIGNED, hashes={"sha256": "AAAA"})
    assert not check_content_hash(bad)
    assert pdu_after_content_hash_check(bad, RoomVersions.V1)["content"] == {}
    assert not check_content_hash({k: v for k, v in bad.items() if k != "hashes"})


def test_required_signers() -> None:
    join = {
        "type": "m.room.member",
        "sender": "@u:a.example",
        "event_id": "$x:b.example",
        "state_key": "@u:a.example",
        "content": {"membership": "join", "join_authorised_via_users_server": "@mod:c.example"},
    }
    assert required_signers(join, RoomVersions.V1) == {"a.example", "b.example"}
    assert required_signers(join, RoomVersions.V7) == {"a.example"}
    assert required_signers(join, RoomVersions.V8) == {"a.example", "c.example"}
    assert required_signers(join, RoomVersions.V12) == {"a.example", "c.example"}


def test_restricted_join_needs_authoriser_signature() -> None:
    other_key = nacl.signing.SigningKey.generate()
    join = {
        "type": "m.room.member",
        "room_id": "!r:a.example",
        "sender": "@u:a.example",
        "state_key": "@u:a.example",
        "content": {"membership": "join", "join_authorised_via_users_server": "@mod:c.example"},
        "prev_events": [],
        "auth_events": [],
        "depth": 4,
        "origin_server_ts": 5,
    }
    signed = sign_event(join, RoomVersions.V10, "a.example", KEY_ID, SIGNING_KEY)
    keys = {"a.example": {KEY_ID: VERIFY_KEY}, "c.example": {KEY_ID: other_key.verify_key}}
    with pytest.raises(SignatureError, match="c.example"):
        verify_event_signatures(signed, RoomVersions.V10, keys)
    cosigned = sign_event(signed, RoomVersions.V10, "c.example", KEY_ID, other_key)
    verify_event_signatures(cosigned, RoomVersions.V10, keys)


def test_event_ids_per_format() -> None:
    pdu = dict(MINIMAL_EVENT_SIGNED)
    v3_id = compute_event_id(pdu, RoomVersions.V3)
    v4_id = compute_event_id(pdu, RoomVersions.V4)
    assert v3_id.startswith("$") and len(v3_id) == 44
    assert decode_base64(v3_id[1:]) == decode_base64(v4_id[1:], urlsafe=True)
    # Event IDs ignore signatures and unsigned data.
    assert compute_event_id(dict(pdu, signatures={}, unsigned={}), RoomVersions.V4) == v4_id
    # ... but not the hashes.
    assert compute_event_id(dict(pdu, hashes={"sha256": "x"}), RoomVersions.V4) != v4_id
    with pytest.raises(ValueError):
        compute_event_id(pdu, RoomVersions.V2)
    assert Event.from_pdu(pdu, RoomVersions.V4).event_id == v4_id


@pytest.mark.parametrize("version", list(KNOWN_ROOM_VERSIONS))
def test_key_validity_window(version: str) -> None:
    room_version = KNOWN_ROOM_VERSIONS[version]
    now = 10**12
    week = MAX_KEY_VALIDITY_MS
    assert key_usable_for_event(now, now, room_version, now)
    expired = key_usable_for_event(now - 1, now, room_version, now)
    # A key claiming validity for a year only counts for a week ahead.
    far_future_event = key_usable_for_event(now + 10 * week, now + 2 * week, room_version, now)
    if room_version.enforce_key_validity:
        assert not expired and not far_future_event
    else:
        assert expired and far_future_event
