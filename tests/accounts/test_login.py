"""GET/POST /login, refresh tokens, logout, and how tokens are accepted."""

from __future__ import annotations

import pytest

from tests.support.accounts import PASSWORD, V3, localpart_of, logged_in, password_login
from tests.support.client import Client, register_user
from tests.support.server import RunningServer


def test_login_flows_offer_password(server: RunningServer) -> None:
    response = Client(server.base_url).get(f"{V3}/login")
    assert response.status == 200
    assert {"type": "m.login.password"} in response.body["flows"]


def test_login_by_each_identifier_form(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    localpart = localpart_of(alice.user_id)
    forms = [
        {"type": "m.id.user", "user": localpart},
        {"type": "m.id.user", "user": alice.user_id},
        {"type": "m.id.user", "user": localpart.upper()},
        localpart,  # legacy top-level "user"
        alice.user_id,
    ]
    for form in forms:
        response = password_login(server.base_url, form)
        assert response.status == 200, (form, response)
        assert response.body["user_id"] == alice.user_id
        whoami = Client(server.base_url, response.body["access_token"]).get(f"{V3}/account/whoami")
        assert whoami.body == {"user_id": alice.user_id, "device_id": response.body["device_id"],
                               "is_guest": False}


def test_wrong_password_and_unknown_user_are_forbidden(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    wrong = password_login(server.base_url, {"type": "m.id.user", "user": alice.user_id}, "wrong")
    assert (wrong.status, wrong.errcode) == (403, "M_FORBIDDEN")
    unknown = password_login(server.base_url, {"type": "m.id.user", "user": "nobody-here"})
    assert (unknown.status, unknown.errcode) == (403, "M_FORBIDDEN")
    remote = password_login(server.base_url, {"type": "m.id.user", "user": "@alice:elsewhere.example"})
    assert (remote.status, remote.errcode) == (403, "M_FORBIDDEN")
    third_party = password_login(server.base_url, {"type": "m.id.thirdparty", "medium": "email",
                                                   "address": "a@example.org"})
    assert (third_party.status, third_party.errcode) == (403, "M_FORBIDDEN")


def test_unknown_login_type_is_refused(server: RunningServer) -> None:
    response = Client(server.base_url).post(f"{V3}/login", {"type": "m.login.token", "token": "x"})
    assert (response.status, response.errcode) == (400, "M_UNKNOWN")


def test_reusing_a_device_id_keeps_the_device_and_replaces_its_token(server: RunningServer) -> None:
    alice = register_user(server.base_url, device_id="LAPTOP")
    again = logged_in(server.base_url, localpart_of(alice.user_id), device_id="LAPTOP")
    assert again.device_id == "LAPTOP"
    devices = again.get(f"{V3}/devices").body["devices"]
    assert [d["device_id"] for d in devices] == ["LAPTOP"]
    assert alice.get(f"{V3}/account/whoami").errcode == "M_UNKNOWN_TOKEN"
    assert again.get(f"{V3}/account/whoami").status == 200


def test_each_login_without_device_id_is_a_new_device(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    second = logged_in(server.base_url, localpart_of(alice.user_id), initial_device_display_name="Tablet")
    assert second.device_id != alice.device_id
    devices = {d["device_id"]: d for d in second.get(f"{V3}/devices").body["devices"]}
    assert set(devices) == {alice.device_id, second.device_id}
    assert devices[second.device_id]["display_name"] == "Tablet"


def test_refresh_tokens_rotate(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    response = password_login(server.base_url, alice.user_id, refresh_token=True)
    assert response.status == 200
    assert response.body["refresh_token"] and response.body["expires_in_ms"] > 0
    anonymous = Client(server.base_url)
    refreshed = anonymous.post(f"{V3}/refresh", {"refresh_token": response.body["refresh_token"]})
    assert refreshed.status == 200, refreshed
    assert refreshed.body["access_token"] != response.body["access_token"]
    assert refreshed.body["refresh_token"] != response.body["refresh_token"]
    new_client = Client(server.base_url, refreshed.body["access_token"])
    assert new_client.get(f"{V3}/account/whoami").body["device_id"] == response.body["device_id"]
    reused = anonymous.post(f"{V3}/refresh", {"refresh_token": response.body["refresh_token"]})
    assert (reused.status, reused.errcode) == (401, "M_UNKNOWN_TOKEN")
    assert anonymous.post(f"{V3}/refresh", {"refresh_token": 5}).status == 400


def test_logout_kills_the_token_and_device(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    other = logged_in(server.base_url, localpart_of(alice.user_id))
    assert alice.post(f"{V3}/logout", {}).status == 200
    assert alice.get(f"{V3}/account/whoami").errcode == "M_UNKNOWN_TOKEN"
    assert [d["device_id"] for d in other.get(f"{V3}/devices").body["devices"]] == [other.device_id]


def test_logout_all_kills_every_token(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    others = [logged_in(server.base_url, localpart_of(alice.user_id)) for _ in range(2)]
    assert alice.post(f"{V3}/logout/all").status == 200
    for client in [alice, *others]:
        assert client.get(f"{V3}/account/whoami").errcode == "M_UNKNOWN_TOKEN"
    assert logged_in(server.base_url, localpart_of(alice.user_id)).get(f"{V3}/devices").body["devices"]


def test_token_in_query_string_and_bad_headers(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    anonymous = Client(server.base_url)
    whoami = f"{V3}/account/whoami"
    assert anonymous.get(whoami, params={"access_token": alice.access_token}).body["user_id"] == alice.user_id
    assert anonymous.get(whoami).errcode == "M_MISSING_TOKEN"
    assert anonymous.get(whoami, token="vat_made-up").errcode == "M_UNKNOWN_TOKEN"
    raw = anonymous.session.get(server.url(whoami), headers={"Authorization": "Basic abc"})
    assert raw.status_code == 401 and raw.json()["errcode"] == "M_MISSING_TOKEN"


@pytest.mark.parametrize("raw", [b"", b"nope", b"[]", b"{}", b"{\"type\": 1}",
                                 b"{\"type\": \"m.login.password\"}",
                                 b"{\"type\": \"m.login.password\", \"user\": 5, \"password\": \"x\"}",
                                 b"{\"type\": \"m.login.password\", \"identifier\": \"me\", \"password\": \"x\"}",
                                 b"{\"type\": \"m.login.password\", \"identifier\": {\"type\": \"m.id.user\"}}",
                                 b"{\"type\": \"m.login.password\", \"user\": \"@\", \"password\": \"x\"}",
                                 b"{\"type\": \"m.login.password\", \"user\": \"a\", \"password\": 5}",
                                 b"{\"type\": \"m.login.password\", \"user\": \"a\", \"password\": \"x\","
                                 b" \"device_id\": 3}"])
def test_malformed_login_bodies_are_client_errors(server: RunningServer, raw: bytes) -> None:
    response = Client(server.base_url).post(f"{V3}/login", raw=raw)
    assert 400 <= response.status < 500, response


def test_password_login_is_case_insensitive_on_localpart_only(server: RunningServer) -> None:
    alice = register_user(server.base_url, password=PASSWORD)
    assert password_login(server.base_url, localpart_of(alice.user_id).upper(), PASSWORD.upper()).status == 403


def test_overlong_device_fields_are_refused(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    long_id = password_login(server.base_url, alice.user_id, device_id="D" * 300)
    assert (long_id.status, long_id.errcode) == (400, "M_BAD_JSON")
    long_name = password_login(server.base_url, alice.user_id, initial_device_display_name="n" * 300)
    assert (long_name.status, long_name.errcode) == (400, "M_BAD_JSON")
