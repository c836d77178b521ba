"""No accounts endpoint answers 500 to junk: every route gets the same set of bad inputs."""

from __future__ import annotations

import pytest

from tests.support.accounts import V3, password_login
from tests.support.client import Client, q, random_localpart, register_user
from tests.support.server import RunningServer

ROUTES = [
    ("POST", f"{V3}/register"), ("GET", f"{V3}/register/available"),
    ("GET", "/_matrix/client/v1/register/m.login.registration_token/validity"),
    ("GET", f"{V3}/login"), ("POST", f"{V3}/login"), ("POST", f"{V3}/refresh"),
    ("POST", f"{V3}/logout"), ("POST", f"{V3}/logout/all"),
    ("GET", f"{V3}/account/whoami"), ("POST", f"{V3}/account/password"),
    ("POST", f"{V3}/account/deactivate"), ("GET", f"{V3}/account/3pid"),
    ("POST", f"{V3}/account/3pid/add"), ("POST", f"{V3}/account/3pid/delete"),
    ("GET", f"{V3}/devices"), ("GET", f"{V3}/devices/%E2%98%83"), ("PUT", f"{V3}/devices/%00"),
    ("DELETE", f"{V3}/devices/x"), ("POST", f"{V3}/delete_devices"),
    ("GET", f"{V3}/profile/%40x"), ("PUT", f"{V3}/profile/%40x/displayname"),
    ("DELETE", f"{V3}/profile/%40x/m.tz"), ("GET", f"{V3}/profile/%FF"),
    ("POST", f"{V3}/user_directory/search"),
    ("PUT", f"{V3}/user/%40x/account_data/t"), ("GET", f"{V3}/user/%40x/rooms/%21r/account_data/t"),
    ("GET", f"{V3}/capabilities"),
    ("GET", "/_synapse/admin/v1/register"), ("POST", "/_synapse/admin/v1/register"),
    ("POST", "/_synapse/admin/v1/registration_tokens/new"),
    ("DELETE", "/_synapse/admin/v1/registration_tokens/%20"),
    ("PUT", f"{V3}/user/%40x/account_data/%00"), ("GET", f"{V3}/profile/%40x%00"),
    ("GET", f"{V3}/register/available?username=%00"),
]
BODIES = [b"", b"{", b"null", b"[]", b"1e999", b"{\"a\": NaN}", b"\xff\xfe\x00", b"{\"auth\": {\"session\": []}}",
          b"{\"identifier\": {\"type\": \"m.id.user\", \"user\": {\"x\": 1}}, \"type\": \"m.login.password\"}",
          b"{\"devices\": [null], \"new_password\": null, \"displayname\": {}, \"search_term\": []}",
          b"{\"username\": \"\\u0000\", \"nonce\": \"\", \"mac\": \"\", \"password\": \"\"}",
          "{\"mac\": \"\u00e9\", \"display_name\": \"a\\u0000\", \"device_id\": \"\\u0000\"}".encode(),
          b"{\"displayname\": \"\\u0000\", \"search_term\": \"\\u0000\", \"refresh_token\": \"\\u0000\"}"]
QUERIES = [{}, {"username": "\u2603", "token": "", "kind": "x"}, {"access_token": "\u00e9"}]


@pytest.mark.parametrize("method,path", ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_junk_never_causes_a_server_error(server: RunningServer, method: str, path: str) -> None:
    alice = register_user(server.base_url)
    anonymous = Client(server.base_url)
    for raw in BODIES:
        for client, params in [(alice, query) for query in QUERIES] + [(anonymous, {})]:
            response = client.request(method, path, raw=raw, params=params)
            assert response.status < 500, (raw, params, response)
    assert alice.get(f"{V3}/account/whoami").status in (200, 401)


def test_nul_characters_are_refused_not_stored(server: RunningServer) -> None:
    """PostgreSQL text cannot hold NUL; each write path refuses it with a 4xx instead."""
    alice = register_user(server.base_url)
    me = q(alice.user_id)
    checks = [
        alice.put(f"{V3}/profile/{me}/displayname", {"displayname": "a\x00b"}),
        alice.put(f"{V3}/profile/{me}/m.tz", {"m.tz": "\x00"}),
        alice.put(f"{V3}/devices/{alice.device_id}", {"display_name": "\x00"}),
        alice.put(f"{V3}/devices/A%00B", {"display_name": "x"}),
        alice.get(f"{V3}/devices/A%00B"),
        alice.put(f"{V3}/user/{me}/account_data/a%00b", {}),
        alice.put(f"{V3}/user/{me}/rooms/%21a%00b%3Ax/account_data/t", {}),
        alice.get(f"{V3}/user/{me}/account_data/a%00b"),
        password_login(server.base_url, alice.user_id, device_id="\x00"),
        password_login(server.base_url, alice.user_id, initial_device_display_name="\x00"),
        password_login(server.base_url, "\x00"),
        Client(server.base_url).post(f"{V3}/register", {"username": random_localpart(), "device_id": "\x00",
                                                        "auth": {"type": "m.login.dummy"}}),
        Client(server.base_url).get(f"{V3}/profile/%40a%00b%3Atest.local"),
    ]
    for response in checks:
        assert 400 <= response.status < 500, response
    validity = Client(server.base_url).get("/_matrix/client/v1/register/m.login.registration_token/validity",
                                           params={"token": "\x00"})
    assert (validity.status, validity.errcode) == (400, "M_INVALID_PARAM")
    search = alice.post(f"{V3}/user_directory/search", {"search_term": "\x00"})
    assert (search.status, search.errcode) == (400, "M_BAD_JSON")
    assert alice.get(f"{V3}/profile/{me}/displayname").status == 200
