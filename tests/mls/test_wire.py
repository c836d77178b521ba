"""homeserver/mls/wire.py on bytes made by the real mls-rs client."""

from __future__ import annotations

import hashlib

import pytest

from homeserver.mls import wire
from tests.support.mls import new_client


@pytest.fixture(scope="module")
def group_run() -> dict[str, bytes | list[bytes]]:
    alice, bob, carol = new_client("@a:hs|A"), new_client("@b:hs|B"), new_client("@b:hs|C")
    kp_bob, kp_carol = bob.generate_key_package_message(), carol.generate_key_package_message()
    group = alice.create_group(b"!room:hs")
    added = group.add_members([kp_bob, kp_carol])
    group.process_incoming_message(added.commit_message)
    app = group.encrypt_application_message(b"secret words")
    update = group.commit()
    group.process_incoming_message(update.commit_message)
    removal = group.remove_members([carol.signing_identity()])
    return {
        "kps": [kp_bob.to_bytes(), kp_carol.to_bytes()],
        "add": added.commit_message.to_bytes(),
        "welcome": added.welcome_message.to_bytes(),
        "app": app.to_bytes(),
        "update": update.commit_message.to_bytes(),
        "remove": removal.commit_message.to_bytes(),
    }


def test_key_package_suite_identity_and_ref(group_run) -> None:
    kp = wire.parse_key_package(group_run["kps"][0])
    assert kp.cipher_suite == wire.SUITE_X25519_AES128GCM_SHA256_ED25519
    assert kp.identity == b"@b:hs|B"
    assert kp.leaf.credential_type == wire.CREDENTIAL_BASIC
    assert kp.raw == group_run["kps"][0][4:]  # the MLSMessage header is not part of the reference
    label = b"MLS 1.0 KeyPackage Reference"
    expected = hashlib.sha256(bytes([len(label)]) + label + bytes([0x40 | (len(kp.raw) >> 8), len(kp.raw) & 0xFF])
                              + kp.raw).digest()
    assert kp.ref() == expected


def test_welcome_names_the_refs_of_the_added_key_packages(group_run) -> None:
    welcome = wire.parse_welcome(group_run["welcome"])
    refs = {wire.parse_key_package(kp).ref() for kp in group_run["kps"]}
    assert welcome.cipher_suite == 1
    assert set(welcome.new_members) == refs and len(welcome.new_members) == 2


def test_add_commit_header_and_proposals(group_run) -> None:
    framed = wire.parse_framed(group_run["add"])
    assert (framed.wire_format, framed.group_id, framed.epoch) == (wire.WIRE_PUBLIC, b"!room:hs", 0)
    assert (framed.content_type, framed.sender_type, framed.sender_index) == (wire.CONTENT_COMMIT, 1, 0)
    assert framed.commit is not None
    adds = [p.key_package.identity for p in framed.commit.proposals if p.key_package]
    assert adds == [b"@b:hs|B", b"@b:hs|C"]


def test_update_and_remove_commits(group_run) -> None:
    update = wire.parse_framed(group_run["update"])
    assert update.epoch == 1 and update.commit is not None
    assert update.commit.proposals == () and update.commit.path_leaf is not None
    assert update.commit.path_leaf.identity == b"@a:hs|A"
    remove = wire.parse_framed(group_run["remove"])
    assert remove.epoch == 2 and remove.commit is not None
    assert [(p.proposal_type, p.removed) for p in remove.commit.proposals] == [(wire.PROPOSAL_REMOVE, 2)]


def test_private_message_header(group_run) -> None:
    framed = wire.parse_framed(group_run["app"])
    assert (framed.wire_format, framed.group_id, framed.epoch, framed.content_type) == \
        (wire.WIRE_PRIVATE, b"!room:hs", 1, wire.CONTENT_APPLICATION)
    assert b"secret words" not in group_run["app"]


@pytest.mark.parametrize("name", ["kps", "add", "welcome", "app"])
def test_truncated_and_trailing_bytes_are_refused(group_run, name) -> None:
    data = group_run[name][0] if name == "kps" else group_run[name]
    parse = {"kps": wire.parse_key_package, "welcome": wire.parse_welcome}.get(name, wire.parse_framed)
    for cut in (0, 3, 5, len(data) // 2):
        with pytest.raises(wire.WireError):
            parse(data[:cut])
    if name != "add":  # a PublicMessage's tail (signature, tag) is not parsed
        with pytest.raises(wire.WireError):
            parse(data + b"\x00")


def test_wrong_kind_and_bad_varints_are_refused(group_run) -> None:
    with pytest.raises(wire.WireError):
        wire.parse_key_package(group_run["welcome"])
    with pytest.raises(wire.WireError):
        wire.parse_welcome(group_run["kps"][0])
    with pytest.raises(wire.WireError):
        wire.parse_framed(group_run["welcome"])
    with pytest.raises(wire.WireError):
        wire.parse_framed(b"\x00\x02" + group_run["app"][2:])  # not MLS 1.0
    with pytest.raises(wire.WireError):
        wire.Reader(b"\x40\x05").varint()  # 5 in two bytes: not minimal
    with pytest.raises(wire.WireError):
        wire.Reader(b"\xc0\x00\x00\x00\x00\x00\x00\x01").varint()  # the reserved 8-byte prefix
    assert wire.Reader(b"\x40\x40").varint() == 64
    assert wire.encode_varint(64) == b"\x40\x40"


def test_unsupported_suite_has_no_ref() -> None:
    with pytest.raises(wire.WireError):
        wire.key_package_ref(0x0002, b"")
