"""Profiles: read anyone's, change only your own."""

from __future__ import annotations

import pytest

from tests.support.accounts import V3, localpart_of
from tests.support.client import Client, q, register_user
from tests.support.server import RunningServer


def test_new_users_have_their_localpart_as_displayname(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    response = Client(server.base_url).get(f"{V3}/profile/{q(alice.user_id)}")
    assert response.status == 200
    assert response.body == {"displayname": localpart_of(alice.user_id)}


def test_set_and_read_displayname_and_avatar(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    base = f"{V3}/profile/{q(alice.user_id)}"
    assert alice.put(f"{base}/displayname", {"displayname": "Alice 🌸"}).status == 200
    assert alice.put(f"{base}/avatar_url", {"avatar_url": "mxc://test.local/abc"}).status == 200
    anonymous = Client(server.base_url)
    assert anonymous.get(f"{base}/displayname").body == {"displayname": "Alice 🌸"}
    assert anonymous.get(f"{base}/avatar_url").body == {"avatar_url": "mxc://test.local/abc"}
    assert anonymous.get(base).body == {"displayname": "Alice 🌸", "avatar_url": "mxc://test.local/abc"}
    assert alice.put(f"{base}/avatar_url", {"avatar_url": None}).status == 200
    assert anonymous.get(f"{base}/avatar_url").errcode == "M_NOT_FOUND"
    assert alice.delete(f"{base}/displayname").status == 200
    assert anonymous.get(base).body == {}


def test_extended_profile_fields(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    base = f"{V3}/profile/{q(alice.user_id)}"
    assert alice.put(f"{base}/m.tz", {"m.tz": "Europe/London"}).status == 200
    assert alice.put(f"{base}/org.example.pets", {"org.example.pets": ["cat", {"name": "dog"}]}).status == 200
    anonymous = Client(server.base_url)
    assert anonymous.get(f"{base}/org.example.pets").body == {"org.example.pets": ["cat", {"name": "dog"}]}
    assert anonymous.get(base).body == {"displayname": localpart_of(alice.user_id), "m.tz": "Europe/London",
                                        "org.example.pets": ["cat", {"name": "dog"}]}
    assert alice.delete(f"{base}/org.example.pets").status == 200
    assert alice.delete(f"{base}/org.example.pets").status == 200  # deleting twice is fine
    assert anonymous.get(f"{base}/org.example.pets").errcode == "M_NOT_FOUND"
    assert alice.put(f"{base}/NotNamespaced", {"NotNamespaced": 1}).errcode == "M_INVALID_PARAM"
    long_key = "org.example." + "k" * 300
    assert alice.put(f"{base}/{long_key}", {long_key: 1}).errcode == "M_KEY_TOO_LARGE"
    huge = alice.put(f"{base}/org.example.big", {"org.example.big": "x" * (65 * 1024)})
    assert (huge.status, huge.errcode) == (400, "M_PROFILE_TOO_LARGE")
    assert alice.put(f"{base}/m.tz", {"m.tz": 5}).errcode == "M_BAD_JSON"


def test_only_your_own_profile_can_change(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    response = bob.put(f"{V3}/profile/{q(alice.user_id)}/displayname", {"displayname": "Not Alice"})
    assert (response.status, response.errcode) == (403, "M_FORBIDDEN")
    assert Client(server.base_url).get(f"{V3}/profile/{q(alice.user_id)}/displayname").body == {
        "displayname": localpart_of(alice.user_id)}
    anonymous = Client(server.base_url).put(f"{V3}/profile/{q(alice.user_id)}/displayname",
                                            {"displayname": "x"})
    assert anonymous.errcode == "M_MISSING_TOKEN"


def test_unknown_users_and_fields_are_not_found(server: RunningServer) -> None:
    client = Client(server.base_url)
    for user_id in ("@nobody:test.local", "not-a-user-id"):
        response = client.get(f"{V3}/profile/{q(user_id)}")
        assert (response.status, response.errcode) == (404, "M_NOT_FOUND"), user_id
    # A remote user's profile is asked of their server; one that cannot be reached is a 502, as in
    # Synapse (tests/federation covers remote profiles that exist).
    remote = client.get(f"{V3}/profile/{q('@someone:elsewhere.example')}")
    assert (remote.status, remote.errcode) == (502, "M_UNKNOWN")
    alice = register_user(server.base_url)
    assert client.get(f"{V3}/profile/{q(alice.user_id)}/m.tz").errcode == "M_NOT_FOUND"
    assert client.get(f"{V3}/profile/{q(alice.user_id)}/Bad Key").status == 400


@pytest.mark.parametrize("field,raw", [
    ("displayname", b"nope"),
    ("displayname", b"{}"),
    ("displayname", b"{\"displayname\": 12}"),
    ("displayname", b"{\"displayname\": \"" + b"x" * 300 + b"\"}"),
    ("avatar_url", b"{\"avatar_url\": [\"mxc://a/b\"]}"),
    ("avatar_url", b"[]"),
])
def test_malformed_profile_updates_are_client_errors(server: RunningServer, field: str, raw: bytes) -> None:
    alice = register_user(server.base_url)
    response = alice.put(f"{V3}/profile/{q(alice.user_id)}/{field}", raw=raw)
    assert 400 <= response.status < 500, response
