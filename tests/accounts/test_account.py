"""Password change, deactivation, 3PID answers, capabilities."""

from __future__ import annotations

import pytest

from tests.support.accounts import (
    PASSWORD,
    V3,
    localpart_of,
    logged_in,
    password_login,
    with_password_uia,
)
from tests.support.client import Client, q, register_user
from tests.support.server import RunningServer


def test_password_change_logs_out_other_devices_by_default(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    other = logged_in(server.base_url, localpart_of(alice.user_id))
    response = with_password_uia(alice, "POST", f"{V3}/account/password", {"new_password": "new secret"})
    assert response.status == 200, response
    assert alice.get(f"{V3}/account/whoami").status == 200
    assert other.get(f"{V3}/account/whoami").errcode == "M_UNKNOWN_TOKEN"
    assert [d["device_id"] for d in alice.get(f"{V3}/devices").body["devices"]] == [alice.device_id]
    assert password_login(server.base_url, alice.user_id, PASSWORD).errcode == "M_FORBIDDEN"
    assert password_login(server.base_url, alice.user_id, "new secret").status == 200


def test_password_change_can_keep_other_devices(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    other = logged_in(server.base_url, localpart_of(alice.user_id))
    response = with_password_uia(alice, "POST", f"{V3}/account/password",
                                 {"new_password": "another", "logout_devices": False})
    assert response.status == 200
    assert other.get(f"{V3}/account/whoami").status == 200


def test_password_change_needs_the_old_password(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    response = with_password_uia(alice, "POST", f"{V3}/account/password", {"new_password": "x"},
                                 password="not it")
    assert (response.status, response.errcode) == (401, "M_FORBIDDEN")
    assert password_login(server.base_url, alice.user_id, PASSWORD).status == 200


def test_deactivation_blocks_login_and_kills_tokens(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    other = logged_in(server.base_url, localpart_of(alice.user_id))
    response = with_password_uia(alice, "POST", f"{V3}/account/deactivate", {})
    assert response.status == 200, response
    assert response.body == {"id_server_unbind_result": "no-support"}
    for client in (alice, other):
        assert client.get(f"{V3}/account/whoami").errcode == "M_UNKNOWN_TOKEN"
    login = password_login(server.base_url, alice.user_id, PASSWORD)
    assert (login.status, login.errcode) == (403, "M_USER_DEACTIVATED")
    assert password_login(server.base_url, alice.user_id, "wrong").errcode == "M_FORBIDDEN"
    again = Client(server.base_url).post(f"{V3}/register", {"username": localpart_of(alice.user_id),
                                                            "auth": {"type": "m.login.dummy"}})
    assert again.errcode == "M_USER_IN_USE"
    assert Client(server.base_url).get(f"{V3}/profile/{q(alice.user_id)}").errcode == "M_NOT_FOUND"


def test_threepid_endpoints_answer_without_threepids(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    assert alice.get(f"{V3}/account/3pid").body == {"threepids": []}
    for suffix in ("/account/3pid/add", "/account/3pid/bind", "/account/3pid"):
        response = alice.post(V3 + suffix, {"client_secret": "s", "sid": "1"})
        assert (response.status, response.errcode) == (403, "M_FORBIDDEN"), suffix
    for suffix in ("/account/3pid/delete", "/account/3pid/unbind"):
        response = alice.post(V3 + suffix, {"medium": "email", "address": "a@example.org"})
        assert response.status == 200 and response.body == {"id_server_unbind_result": "no-support"}
        assert alice.post(V3 + suffix, {"medium": "email"}).status == 400
    token = alice.post(f"{V3}/account/3pid/email/requestToken",
                       {"client_secret": "s", "email": "a@example.org", "send_attempt": 1})
    assert (token.status, token.errcode) == (403, "M_THREEPID_DENIED")
    reset = Client(server.base_url).post(f"{V3}/account/password/email/requestToken",
                                         {"client_secret": "s", "email": "a@example.org", "send_attempt": 1})
    assert (reset.status, reset.errcode) == (400, "M_THREEPID_NOT_FOUND")


def test_capabilities(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    response = alice.get(f"{V3}/capabilities")
    assert response.status == 200
    caps = response.body["capabilities"]
    assert caps["m.change_password"] == {"enabled": True}
    assert caps["m.set_displayname"] == {"enabled": True}
    assert caps["m.set_avatar_url"] == {"enabled": True}
    assert caps["m.3pid_changes"] == {"enabled": False}
    assert caps["m.room_versions"]["default"] == "12"
    assert caps["m.room_versions"]["available"] == {str(v): "stable" for v in range(1, 13)}
    assert Client(server.base_url).get(f"{V3}/capabilities").errcode == "M_MISSING_TOKEN"


@pytest.mark.parametrize("suffix,raw", [
    ("/account/password", b"nope"),
    ("/account/password", b"{}"),
    ("/account/password", b"{\"new_password\": 5}"),
    ("/account/password", b"{\"new_password\": \"x\", \"logout_devices\": \"yes\"}"),
    ("/account/password", b"{\"new_password\": \"x\", \"auth\": {\"type\": \"m.login.password\","
                          b" \"identifier\": {\"type\": \"m.id.user\", \"user\": \"@bad\"}, \"password\": \"p\"}}"),
    ("/account/deactivate", b"[1]"),
    ("/account/deactivate", b"{\"erase\": \"yes\"}"),
    ("/account/3pid/delete", b"{\"medium\": 1, \"address\": 2}"),
    ("/account/3pid/add", b"not json"),
])
def test_malformed_account_requests_are_client_errors(server: RunningServer, suffix: str, raw: bytes) -> None:
    alice = register_user(server.base_url)
    response = alice.post(V3 + suffix, raw=raw)
    assert 400 <= response.status < 500, response
    assert alice.get(f"{V3}/account/whoami").status == 200
