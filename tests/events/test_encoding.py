"""Unpadded base64 and canonical JSON against the spec appendix vectors."""

from __future__ import annotations

import pytest

from homeserver.events.canonical_json import (
    CANONICALJSON_MAX_INT,
    CANONICALJSON_MIN_INT,
    CanonicalJSONError,
    check_canonical_json,
    check_json_for_room_version,
    encode_canonical_json,
    parse_json,
)
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.events.unpadded_base64 import decode_base64, encode_base64

BASE64_VECTORS = [
    (b"", ""),
    (b"f", "Zg"),
    (b"fo", "Zm8"),
    (b"foo", "Zm9v"),
    (b"foob", "Zm9vYg"),
    (b"fooba", "Zm9vYmE"),
    (b"foobar", "Zm9vYmFy"),
]


@pytest.mark.parametrize(("raw", "encoded"), BASE64_VECTORS)
def test_unpadded_base64_vectors(raw: bytes, encoded: str) -> None:
    assert encode_base64(raw) == encoded
    assert decode_base64(encoded) == raw


def test_decode_accepts_padding() -> None:
    assert decode_base64("Zg==") == b"f"
    assert decode_base64("Zm8=") == b"fo"


def test_urlsafe_alphabet() -> None:
    raw = bytes([0xFB, 0xFF, 0xBF])
    assert encode_base64(raw) == "+/+/"
    assert encode_base64(raw, urlsafe=True) == "-_-_"
    assert decode_base64("-_-_", urlsafe=True) == raw
    with pytest.raises(ValueError):
        decode_base64("+/+/", urlsafe=True)
    with pytest.raises(ValueError):
        decode_base64("-_-_")


@pytest.mark.parametrize("bad", ["Z", "Zm9v!", "Zm9vY"])
def test_decode_rejects_garbage(bad: str) -> None:
    with pytest.raises(ValueError):
        decode_base64(bad)


CANONICAL_JSON_VECTORS = [
    ("{}", "{}"),
    ('{\n    "one": 1,\n    "two": "Two"\n}', '{"one":1,"two":"Two"}'),
    ('{\n    "b": "2",\n    "a": "1"\n}', '{"a":"1","b":"2"}'),
    ('{"b":"2","a":"1"}', '{"a":"1","b":"2"}'),
    (
        """{
    "auth": {
        "success": true,
        "mxid": "@john.doe:example.com",
        "profile": {
            "display_name": "John Doe",
            "three_pids": [
                {"medium": "email", "address": "john.doe@example.org"},
                {"medium": "msisdn", "address": "123456789"}
            ]
        }
    }
}""",
        '{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe",'
        '"three_pids":[{"address":"john.doe@example.org","medium":"email"},'
        '{"address":"123456789","medium":"msisdn"}]},"success":true}}',
    ),
    ('{"a": "日本語"}', '{"a":"日本語"}'),
    ('{"本": 2, "日": 1}', '{"日":1,"本":2}'),
    ('{"a": "\\u65E5"}', '{"a":"日"}'),
    ('{"a": null}', '{"a":null}'),
    ('{"a": -0, "b": 1e10}', '{"a":0,"b":10000000000}'),
]


@pytest.mark.parametrize(("source", "expected"), CANONICAL_JSON_VECTORS)
def test_canonical_json_vectors(source: str, expected: str) -> None:
    assert encode_canonical_json(parse_json(source)) == expected.encode("utf-8")


def test_control_characters_escaped_minimally() -> None:
    encoded = encode_canonical_json({"a": '\x00\x08\n\x1f"\\/\u2028'})
    assert encoded == '{"a":"\\u0000\\b\\n\\u001f\\"\\\\/\u2028"}'.encode()


def test_parse_rejects_nan_and_infinity() -> None:
    for text in ('{"a": NaN}', '{"a": Infinity}', '{"a": -Infinity}'):
        with pytest.raises(ValueError):
            parse_json(text)


def test_parse_keeps_fractional_floats() -> None:
    assert parse_json('{"a": 1.5}') == {"a": 1.5}
    assert isinstance(parse_json("2.0"), int)


@pytest.mark.parametrize(
    "value", [CANONICALJSON_MAX_INT, CANONICALJSON_MIN_INT, 0, True, None, "x"]
)
def test_strict_accepts_in_range(value: object) -> None:
    check_canonical_json({"nested": [value]})


@pytest.mark.parametrize(
    "value", [CANONICALJSON_MAX_INT + 1, CANONICALJSON_MIN_INT - 1, 1.5, float("nan")]
)
def test_strict_rejects(value: object) -> None:
    with pytest.raises(CanonicalJSONError, match=r"nested\[0\]"):
        check_canonical_json({"nested": [value]})


@pytest.mark.parametrize("version", list(KNOWN_ROOM_VERSIONS))
def test_strictness_per_room_version(version: str) -> None:
    room_version = KNOWN_ROOM_VERSIONS[version]
    loose = {"depth": 2**60, "content": {"x": 0.5}}
    if int(version) >= 6:
        with pytest.raises(CanonicalJSONError):
            check_json_for_room_version(loose, room_version)
    else:
        check_json_for_room_version(loose, room_version)
    check_json_for_room_version({"depth": 5}, room_version)


def test_integral_float_from_json_is_normalised_then_accepted() -> None:
    parsed = parse_json('{"b": 1e10}')
    check_json_for_room_version(parsed, KNOWN_ROOM_VERSIONS["12"])
    assert parsed == {"b": 10000000000}
