"""Identifier grammar (appendices: server names, user IDs, room IDs, event IDs, aliases)."""

from __future__ import annotations

import pytest

from homeserver.events.identifiers import (
    is_valid_event_id,
    is_valid_room_alias,
    is_valid_room_id,
    is_valid_server_name,
    is_valid_user_id,
    server_name_of,
)
from homeserver.events.room_versions import RoomVersions


@pytest.mark.parametrize(
    "name",
    [
        "matrix.org",
        "matrix.org:8888",
        "1.2.3.4",
        "1.2.3.4:1234",
        "[1234:5678::abcd]",
        "[1234:5678::abcd]:5678",
        "localhost",
    ],
)
def test_valid_server_names(name: str) -> None:
    assert is_valid_server_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "matrix.org:",
        "matrix.org:123456",
        "[1234:5678::abcd",
        "[zz::1]",
        "exa mple.org",
        "a_b.org",
        "1.2.3.456",
    ],
)
def test_invalid_server_names(name: str) -> None:
    assert not is_valid_server_name(name)


def test_user_ids() -> None:
    assert is_valid_user_id("@alice:example.org")
    assert is_valid_user_id("@a.b_c=d-e/f+g:example.org:8448", allow_historical=False)
    assert is_valid_user_id("@Alice!:example.org")  # historical, tolerated
    assert not is_valid_user_id("@Alice!:example.org", allow_historical=False)
    assert not is_valid_user_id("alice:example.org")
    assert not is_valid_user_id("@alice")
    assert not is_valid_user_id("@:example.org")
    assert not is_valid_user_id("@al ice:example.org")
    assert not is_valid_user_id("@" + "a" * 250 + ":example.org")


def test_room_ids() -> None:
    hashed = "!" + "A" * 42 + "_"
    assert is_valid_room_id("!opaque:example.org", RoomVersions.V11)
    assert not is_valid_room_id(hashed, RoomVersions.V11)
    assert is_valid_room_id(hashed, RoomVersions.V12)
    assert not is_valid_room_id("!opaque:example.org", RoomVersions.V12)
    assert is_valid_room_id(hashed) and is_valid_room_id("!o:example.org")
    assert not is_valid_room_id("#o:example.org")
    assert not is_valid_room_id("!o\x00:example.org")
    assert not is_valid_room_id("!:example.org")


def test_event_ids() -> None:
    assert is_valid_event_id("$0:domain", RoomVersions.V1)
    assert not is_valid_event_id("$CD66HAED5npg6074c6pDtLKalHjVfYb2q4Q3LZgrW6o", RoomVersions.V2)
    assert is_valid_event_id("$CD66HAED5npg6074c6pDtLKalHjVfYb2q4Q3LZgrW6o", RoomVersions.V3)
    assert is_valid_event_id("$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg", RoomVersions.V4)
    assert not is_valid_event_id("$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg", RoomVersions.V3)
    assert not is_valid_event_id("$abc+/def", RoomVersions.V4)
    assert is_valid_event_id("$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg")


def test_room_aliases() -> None:
    assert is_valid_room_alias("#room:example.org")
    assert is_valid_room_alias("#日本:example.org")
    assert not is_valid_room_alias("room:example.org")
    assert not is_valid_room_alias("#room")
    assert not is_valid_room_alias("#a:b:bad server")


def test_server_name_of() -> None:
    assert server_name_of("@u:example.org:8448") == "example.org:8448"
    assert server_name_of("$e:hs") == "hs"
    with pytest.raises(ValueError):
        server_name_of("$CD66HAED5npg6074c6pDtLKalHjVfYb2q4Q3LZgrW6o")
