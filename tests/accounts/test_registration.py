"""POST /register: UIA, username rules, options, and refusals."""

from __future__ import annotations

import pytest

from tests.support.accounts import V3
from tests.support.client import Client, random_localpart, register_user
from tests.support.server import RunningServer

DUMMY = {"type": "m.login.dummy"}
FORBIDDEN_CHARACTERS = list("!\"#$%&'()*,:;<>?@[\\]^`{|}~ ") + ["é", "\u00a0", "\x00", "\n", "ß", "😀"]


def register(server: RunningServer, body: object, **kwargs: object) -> object:
    return Client(server.base_url).post(f"{V3}/register", body, **kwargs)


def test_empty_body_gets_401_with_flows_and_session(server: RunningServer) -> None:
    response = register(server, {})
    assert response.status == 401
    assert response.body["flows"] == [{"stages": ["m.login.dummy"]}]
    assert isinstance(response.body["session"], str) and response.body["session"]
    assert response.body["params"] == {}
    assert "errcode" not in response.body
    no_body = Client(server.base_url).post(f"{V3}/register", raw=b"")
    assert no_body.status == 401 and no_body.body["flows"] == [{"stages": ["m.login.dummy"]}]


def test_dummy_stage_completes_the_session_flow(server: RunningServer) -> None:
    localpart = random_localpart()
    first = register(server, {"username": localpart, "password": "pw123456"})
    assert first.status == 401
    done = register(server, {"username": localpart, "password": "pw123456",
                             "auth": {**DUMMY, "session": first.body["session"]}})
    assert done.status == 200, done
    assert done.body["user_id"] == f"@{localpart}:{server.server_name}"
    assert done.body["access_token"] and done.body["device_id"]


def test_unknown_session_and_unknown_stage_are_refused(server: RunningServer) -> None:
    unknown_session = register(server, {"username": random_localpart(),
                                        "auth": {**DUMMY, "session": "no-such-session"}})
    assert unknown_session.status == 400
    wrong_stage = register(server, {"username": random_localpart(), "auth": {"type": "m.login.fancy"}})
    assert wrong_stage.status == 401
    assert wrong_stage.body["flows"] == [{"stages": ["m.login.dummy"]}]
    assert wrong_stage.errcode == "M_UNRECOGNIZED"


def test_username_is_lower_cased(server: RunningServer) -> None:
    localpart = random_localpart("Mixed")
    response = register(server, {"username": localpart, "password": "pw", "auth": DUMMY})
    assert response.status == 200, response
    assert response.body["user_id"] == f"@{localpart.lower()}:{server.server_name}"


def test_every_allowed_character_is_accepted(server: RunningServer) -> None:
    localpart = random_localpart("a.b_c=d-e/f+g")
    response = register(server, {"username": localpart, "auth": DUMMY})
    assert response.status == 200, response


@pytest.mark.parametrize("character", FORBIDDEN_CHARACTERS, ids=lambda c: f"U+{ord(c):04X}")
def test_each_forbidden_character_is_refused(server: RunningServer, character: str) -> None:
    response = register(server, {"username": f"bad{character}name", "auth": DUMMY})
    # U+0000 is refused for every JSON body at the HTTP edge, before username rules run.
    expected = "M_BAD_JSON" if character == "\x00" else "M_INVALID_USERNAME"
    assert (response.status, response.errcode) == (400, expected), response


@pytest.mark.parametrize("username", ["", "_reserved", "12345", "x" * 300])
def test_reserved_empty_numeric_and_long_names_are_refused(server: RunningServer, username: str) -> None:
    response = register(server, {"username": username, "auth": DUMMY})
    assert (response.status, response.errcode) == (400, "M_INVALID_USERNAME"), response


def test_duplicate_user_is_refused_before_and_after_uia(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    localpart = alice.user_id[1:].split(":")[0]
    for body in ({"username": localpart}, {"username": localpart.upper(), "auth": DUMMY}):
        response = register(server, body)
        assert (response.status, response.errcode) == (400, "M_USER_IN_USE"), response


def test_username_availability(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    client = Client(server.base_url)
    free = client.get(f"{V3}/register/available", params={"username": random_localpart()})
    assert free.status == 200 and free.body == {"available": True}
    taken = client.get(f"{V3}/register/available", params={"username": alice.user_id[1:].split(":")[0]})
    assert (taken.status, taken.errcode) == (400, "M_USER_IN_USE")
    invalid = client.get(f"{V3}/register/available", params={"username": "no way"})
    assert (invalid.status, invalid.errcode) == (400, "M_INVALID_USERNAME")
    missing = client.get(f"{V3}/register/available")
    assert (missing.status, missing.errcode) == (400, "M_MISSING_PARAM")


def test_inhibit_login_returns_no_token(server: RunningServer) -> None:
    response = register(server, {"username": random_localpart(), "auth": DUMMY, "inhibit_login": True})
    assert response.status == 200
    assert "access_token" not in response.body and "device_id" not in response.body
    assert response.body["user_id"].startswith("@")


def test_device_id_and_display_name_are_used(server: RunningServer) -> None:
    response = register(server, {"username": random_localpart(), "auth": DUMMY, "device_id": "MYPHONE",
                                 "initial_device_display_name": "Phone"})
    assert response.status == 200
    assert response.body["device_id"] == "MYPHONE"
    client = Client(server.base_url, response.body["access_token"])
    device = client.get(f"{V3}/devices/MYPHONE")
    assert device.status == 200 and device.body["display_name"] == "Phone"


def test_no_username_gets_a_generated_one(server: RunningServer) -> None:
    response = register(server, {"auth": DUMMY})
    assert response.status == 200
    assert response.body["user_id"].endswith(f":{server.server_name}")


def test_guests_refused_when_guest_access_is_off(server: RunningServer) -> None:
    response = register(server, {}, params={"kind": "guest"})
    assert (response.status, response.errcode) == (403, "M_FORBIDDEN")


def test_third_party_registration_is_denied(server: RunningServer) -> None:
    for medium in ("email", "msisdn"):
        response = register_path(server, f"/register/{medium}/requestToken",
                                 {"client_secret": "x", "email": "a@b.c", "send_attempt": 1})
        assert (response.status, response.errcode) == (403, "M_THREEPID_DENIED")


def register_path(server: RunningServer, suffix: str, body: object) -> object:
    return Client(server.base_url).post(f"{V3}{suffix}", body)


@pytest.mark.parametrize("raw", [b"not json", b"[1,2]", b"\"text\"", b"{\"username\": 5}",
                                 b"{\"password\": [1]}", b"{\"auth\": \"dummy\"}",
                                 b"{\"inhibit_login\": \"yes\"}", b"{\"device_id\": {}}",
                                 b"{\"auth\": {\"type\": \"m.login.dummy\", \"session\": 7}}",
                                 b"{\"auth\": {\"type\": 12}}", b"\xff\xfe", b"{\"refresh_token\": 1}"])
def test_malformed_bodies_are_client_errors(server: RunningServer, raw: bytes) -> None:
    response = Client(server.base_url).post(f"{V3}/register", raw=raw)
    assert 400 <= response.status < 500, response


def test_bad_kind_is_a_client_error(server: RunningServer) -> None:
    response = register(server, {}, params={"kind": "robot"})
    assert response.status == 400


def test_overlong_password_is_refused(server: RunningServer) -> None:
    response = register(server, {"username": random_localpart(), "password": "p" * 600, "auth": DUMMY})
    assert (response.status, response.errcode) == (400, "M_BAD_JSON")
