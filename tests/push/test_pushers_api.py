"""``GET /pushers`` and ``POST /pushers/set``, black-box: identity, append, deletion,
the spec's validation errors, and pushers going with the device that set them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.client import Client
from tests.support.databases import ENGINES, drop_database
from tests.support.push_gateway import pusher_body
from tests.support.rooms import V3
from tests.support.server import RunningServer, start_test_server

URL = "https://push.example.org/_matrix/push/v1/notify"


@pytest.fixture(scope="module", params=ENGINES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running, database = start_test_server(tmp_path_factory.mktemp(f"pushers-{request.param}"), request.param)
    try:
        yield running
    finally:
        running.stop()
        drop_database(database)


def user(server: RunningServer) -> Client:
    client = Client(server.base_url)
    response = client.post(f"{V3}/register", {"auth": {"type": "m.login.dummy"}})
    assert response.status == 200, response
    client.access_token = response.body["access_token"]
    client.user_id = response.body["user_id"]
    client.device_id = response.body["device_id"]
    return client


def login_again(server: RunningServer, client: Client) -> Client:
    """A second device of the same user (registered with a password for this)."""
    other = Client(server.base_url)
    response = other.post(f"{V3}/login", {"type": "m.login.password", "password": "pw-for-pushers",
                                          "identifier": {"type": "m.id.user", "user": client.user_id}})
    assert response.status == 200, response
    other.access_token, other.user_id = response.body["access_token"], response.body["user_id"]
    other.device_id = response.body["device_id"]
    return other


def password_user(server: RunningServer) -> Client:
    client = Client(server.base_url)
    response = client.post(f"{V3}/register", {"auth": {"type": "m.login.dummy"}, "password": "pw-for-pushers"})
    assert response.status == 200, response
    client.access_token, client.user_id = response.body["access_token"], response.body["user_id"]
    client.device_id = response.body["device_id"]
    return client


def pushers(client: Client, prefix: str = V3) -> list[dict[str, Any]]:
    response = client.get(f"{prefix}/pushers")
    assert response.status == 200, response
    return response.body["pushers"]


def set_pusher(client: Client, body: dict[str, Any], expect: int = 200) -> Any:
    response = client.post(f"{V3}/pushers/set", body)
    assert response.status == expect, response
    return response


def test_a_new_user_has_no_pushers(server: RunningServer) -> None:
    assert pushers(user(server)) == []


def test_set_then_get_lists_the_pusher_with_every_field(server: RunningServer) -> None:
    alice = user(server)
    body = pusher_body(URL, "key-1", format="event_id_only", custom={"x": 1})
    body["profile_tag"] = "tag"
    assert set_pusher(alice, body).body == {}
    assert pushers(alice) == [{
        "pushkey": "key-1", "kind": "http", "app_id": "org.example.app", "app_display_name": "Example App",
        "device_display_name": "Test phone", "profile_tag": "tag", "lang": "en",
        "data": {"url": URL, "format": "event_id_only", "custom": {"x": 1}},
    }]
    assert pushers(alice, "/_matrix/client/r0") == pushers(alice)


def test_same_app_id_and_pushkey_updates_and_another_pushkey_adds(server: RunningServer) -> None:
    alice = user(server)
    set_pusher(alice, pusher_body(URL, "key-1"))
    updated = pusher_body(URL, "key-1")
    updated["lang"] = "fr"
    set_pusher(alice, updated)
    assert [(p["pushkey"], p["lang"]) for p in pushers(alice)] == [("key-1", "fr")]
    set_pusher(alice, pusher_body(URL, "key-2"))
    set_pusher(alice, pusher_body(URL, "key-1", app_id="org.example.other"))
    assert sorted((p["app_id"], p["pushkey"]) for p in pushers(alice)) == [
        ("org.example.app", "key-1"), ("org.example.app", "key-2"), ("org.example.other", "key-1")]


def test_kind_null_deletes_only_that_pusher(server: RunningServer) -> None:
    alice = user(server)
    set_pusher(alice, pusher_body(URL, "key-1"))
    set_pusher(alice, pusher_body(URL, "key-2"))
    set_pusher(alice, {"kind": None, "app_id": "org.example.app", "pushkey": "key-1"})
    assert [p["pushkey"] for p in pushers(alice)] == ["key-2"]
    # Deleting what is not there is not an error.
    set_pusher(alice, {"kind": None, "app_id": "org.example.app", "pushkey": "never-set"})


def test_without_append_the_same_pushkey_of_other_users_goes(server: RunningServer) -> None:
    alice, bob, carol = user(server), user(server), user(server)
    set_pusher(alice, pusher_body(URL, "shared-key"))
    with_append = pusher_body(URL, "shared-key")
    with_append["append"] = True
    set_pusher(bob, with_append)
    assert len(pushers(alice)) == 1 and len(pushers(bob)) == 1
    set_pusher(carol, pusher_body(URL, "shared-key"))
    assert pushers(alice) == [] and pushers(bob) == []
    assert [p["pushkey"] for p in pushers(carol)] == ["shared-key"]


def test_users_see_only_their_own_pushers(server: RunningServer) -> None:
    alice, bob = user(server), user(server)
    set_pusher(alice, pusher_body(URL, "alice-key"))
    assert pushers(bob) == []
    # Bob deleting Alice's identity deletes nothing of hers.
    set_pusher(bob, {"kind": None, "app_id": "org.example.app", "pushkey": "alice-key"})
    assert [p["pushkey"] for p in pushers(alice)] == ["alice-key"]


def test_no_token_is_401(server: RunningServer) -> None:
    anonymous = Client(server.base_url)
    assert anonymous.get(f"{V3}/pushers").errcode == "M_MISSING_TOKEN"
    assert anonymous.post(f"{V3}/pushers/set", pusher_body(URL, "k")).status == 401


def _without(body: dict[str, Any], *names: str) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key not in names}


@pytest.mark.parametrize(("change", "errcode"), [
    (lambda b: _without(b, "pushkey"), "M_MISSING_PARAM"),
    (lambda b: _without(b, "kind"), "M_MISSING_PARAM"),
    (lambda b: _without(b, "app_id"), "M_MISSING_PARAM"),
    (lambda b: _without(b, "lang", "data"), "M_MISSING_PARAM"),
    (lambda b: _without(b, "app_display_name"), "M_MISSING_PARAM"),
    (lambda b: _without(b, "device_display_name"), "M_MISSING_PARAM"),
    (lambda b: {**b, "data": {}}, "M_MISSING_PARAM"),
    (lambda b: {**b, "data": {"url": "ftp://push.example.org/_matrix/push/v1/notify"}}, "M_INVALID_PARAM"),
    (lambda b: {**b, "data": {"url": "https://push.example.org/notify"}}, "M_INVALID_PARAM"),
    (lambda b: {**b, "data": {"url": "https:///_matrix/push/v1/notify"}}, "M_INVALID_PARAM"),
    (lambda b: {**b, "data": {"url": "https://push.example.org:99999/_matrix/push/v1/notify"}}, "M_INVALID_PARAM"),
    (lambda b: {**b, "data": {"url": "not a url"}}, "M_INVALID_PARAM"),
    (lambda b: {**b, "data": {"url": 7}}, "M_BAD_JSON"),
    (lambda b: {**b, "data": {"url": URL, "format": "full"}}, "M_INVALID_PARAM"),
    (lambda b: {**b, "data": "https://push.example.org/_matrix/push/v1/notify"}, "M_BAD_JSON"),
    (lambda b: {**b, "kind": "email"}, "M_INVALID_PARAM"),
    (lambda b: {**b, "kind": 1}, "M_BAD_JSON"),
    (lambda b: {**b, "app_id": "a" * 65}, "M_INVALID_PARAM"),
    (lambda b: {**b, "app_id": ""}, "M_INVALID_PARAM"),
    (lambda b: {**b, "pushkey": "é" * 257}, "M_INVALID_PARAM"),
    (lambda b: {**b, "pushkey": 5}, "M_BAD_JSON"),
    (lambda b: {**b, "lang": ["en"]}, "M_BAD_JSON"),
    (lambda b: {**b, "append": "yes"}, "M_BAD_JSON"),
    (lambda b: {**b, "profile_tag": 3}, "M_BAD_JSON"),
])
def test_bad_bodies_get_the_spec_errors(server: RunningServer, change: Any, errcode: str) -> None:
    alice = user(server)
    response = alice.post(f"{V3}/pushers/set", change(pusher_body(URL, "key")))
    assert (response.status, response.errcode) == (400, errcode), response
    assert pushers(alice) == []


def test_missing_params_are_all_named(server: RunningServer) -> None:
    response = user(server).post(f"{V3}/pushers/set", _without(pusher_body(URL, "key"), "lang", "data"))
    assert response.errcode == "M_MISSING_PARAM"
    assert "lang" in response.body["error"] and "data" in response.body["error"]


def test_a_pushkey_of_512_bytes_is_allowed(server: RunningServer) -> None:
    alice = user(server)
    set_pusher(alice, pusher_body(URL, "é" * 256))
    assert len(pushers(alice)) == 1


def test_not_json_and_not_an_object(server: RunningServer) -> None:
    alice = user(server)
    assert alice.post(f"{V3}/pushers/set", raw=b"{nope").errcode == "M_NOT_JSON"
    assert alice.post(f"{V3}/pushers/set", ["kind"]).status == 400


def test_deleting_the_device_deletes_its_pushers_only(server: RunningServer) -> None:
    alice = password_user(server)
    phone = login_again(server, alice)
    set_pusher(alice, pusher_body(URL, "first-device"))
    set_pusher(phone, pusher_body(URL, "phone"))
    response = alice.request("DELETE", f"{V3}/devices/{phone.device_id}", {
        "auth": {"type": "m.login.password", "password": "pw-for-pushers",
                 "identifier": {"type": "m.id.user", "user": alice.user_id}}})
    assert response.status == 200, response
    assert [p["pushkey"] for p in pushers(alice)] == ["first-device"]


def test_logging_out_deletes_the_pushers_of_that_session(server: RunningServer) -> None:
    alice = password_user(server)
    phone = login_again(server, alice)
    set_pusher(phone, pusher_body(URL, "phone"))
    set_pusher(alice, pusher_body(URL, "laptop"))
    assert phone.post(f"{V3}/logout", {}).status == 200
    assert [p["pushkey"] for p in pushers(alice)] == ["laptop"]
    assert alice.post(f"{V3}/logout/all", {}).status == 200
    again = login_again(server, alice)
    assert pushers(again) == []


def test_setting_from_another_device_moves_the_pusher_to_it(server: RunningServer) -> None:
    """The pusher belongs to the device that set it last (Synapse: the latest access token)."""
    alice = password_user(server)
    phone = login_again(server, alice)
    set_pusher(alice, pusher_body(URL, "moved"))
    set_pusher(phone, pusher_body(URL, "moved"))
    assert phone.post(f"{V3}/logout", {}).status == 200
    assert pushers(alice) == []

