"""Pure parts of the transport: X-Matrix headers and the outbound address filter."""

from __future__ import annotations

import nacl.signing
import pytest

from federation.transport.x_matrix import (
    XMatrixParseError,
    parse_credential,
    request_signing_object,
    sign_request,
)
from homeserver.config.schema import DEFAULT_IP_RANGE_BLACKLIST
from homeserver.events.builder import ServerSigningKey
from homeserver.events.signing import verify_json_signature
from homeserver.outbound.address_filter import AddressFilter


def test_signed_header_round_trips_and_verifies() -> None:
    key = ServerSigningKey("origin.test", "ed25519:k1", nacl.signing.SigningKey.generate())
    header = sign_request(key, "put", "/_matrix/federation/v1/send/1?x=%20", "dest.test:8448", {"pdus": []})
    credential = parse_credential(header)
    assert (credential.origin, credential.destination, credential.key_id) == \
        ("origin.test", "dest.test:8448", "ed25519:k1")
    signed = request_signing_object("PUT", "/_matrix/federation/v1/send/1?x=%20", "origin.test",
                                    "dest.test:8448", {"pdus": []})
    signed["signatures"] = {"origin.test": {"ed25519:k1": credential.signature}}
    verify_json_signature(signed, "origin.test", {"ed25519:k1": key.signing_key.verify_key})


def test_lenient_parsing() -> None:
    credential = parse_credential('x-matrix ORIGIN=a.test, key = "ed25519:1" ,sig=ab/c+d==,extra="x, y"')
    assert (credential.origin, credential.key_id, credential.signature) == ("a.test", "ed25519:1", "ab/c+d==")
    escaped = parse_credential(r'X-Matrix origin="a\"b",key="ed25519:1",sig="s"')
    assert escaped.origin == 'a"b'


@pytest.mark.parametrize("header", ["Bearer x", "X-Matrixorigin=a", 'X-Matrix origin="a",key="k"',
                                    'X-Matrix =a', 'X-Matrix origin="a";key="k",sig="s"'])
def test_malformed(header: str) -> None:
    with pytest.raises(XMatrixParseError):
        parse_credential(header)


@pytest.mark.parametrize(("address", "allowed"), [
    ("8.8.8.8", True), ("2001:4860::8888", True),
    ("127.0.0.1", False), ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False),
    ("100.64.0.1", False), ("169.254.169.254", False), ("0.0.0.0", False),
    ("::1", False), ("fe80::1", False), ("fd00::1", False), ("::", False),
    ("::ffff:127.0.0.1", False), ("::ffff:10.0.0.1", False), ("::ffff:8.8.8.8", True),
    ("not an ip", False),
])
def test_default_blacklist(address: str, allowed: bool) -> None:
    assert AddressFilter.from_ranges(DEFAULT_IP_RANGE_BLACKLIST).allows(address) is allowed


def test_whitelist_reopens_a_range() -> None:
    guard = AddressFilter.from_ranges(DEFAULT_IP_RANGE_BLACKLIST, ["127.0.0.1/32", "fd00::/8"])
    assert guard.allows("127.0.0.1") and guard.allows("fd12::1") and guard.allows("::ffff:127.0.0.1")
    assert not guard.allows("127.0.0.2")
    assert not AddressFilter.from_ranges([], []).allows("0.0.0.0")  # never a destination
