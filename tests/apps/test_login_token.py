"""Signing in a new device from a signed-in one (MSC3882, spec v1.7 ``POST /v1/login/get_token``).

Off by default (``login_via_existing_session``, as Synapse); when on, the signed-in device confirms
the password (user-interactive auth) and gets a one-use token that a new client spends at
``POST /login`` with ``m.login.token``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.accounts import PASSWORD, password_auth, with_password_uia
from tests.support.client import Client, Response, register_user
from tests.support.databases import ENGINES
from tests.support.rooms import V3
from tests.support.server import RunningServer, custom_server

GET_TOKEN = "/_matrix/client/v1/login/get_token"
UNSTABLE_GET_TOKEN = "/_matrix/client/unstable/org.matrix.msc3882/login/get_token"
LOGIN = f"{V3}/login"


def _server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
            **settings: Any) -> Iterator[RunningServer]:
    directory = tmp_path_factory.mktemp(f"hs-login-token-{request.param}")
    with custom_server(directory, request.param,
                       login_via_existing_session={"enabled": True, **settings}) as running:
        yield running


@pytest.fixture(scope="module", params=ENGINES)
def enabled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The feature on, with Synapse's other defaults (UIA required, 5-minute tokens)."""
    yield from _server(request, tmp_path_factory)


@pytest.fixture(scope="module", params=ENGINES)
def quick(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """No UIA, and tokens that last one second."""
    yield from _server(request, tmp_path_factory, require_ui_auth=False, token_timeout="1s")


def mint(client: Client) -> Response:
    response = with_password_uia(client, "POST", GET_TOKEN, {})
    assert response.status == 200, response
    return response


def token_login(base_url: str, token: Any, **extra: Any) -> Response:
    return Client(base_url).post(LOGIN, {"type": "m.login.token", "token": token, **extra})


def test_off_by_default(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    for path in (GET_TOKEN, UNSTABLE_GET_TOKEN):
        response = alice.post(path, {})
        assert (response.status, response.errcode) == (404, "M_UNRECOGNIZED"), response
    capabilities = alice.get(f"{V3}/capabilities").body["capabilities"]
    assert capabilities["m.get_login_token"] == {"enabled": False}
    flows = Client(server.base_url).get(LOGIN).body["flows"]
    assert [flow["type"] for flow in flows] == ["m.login.password"]
    response = token_login(server.base_url, "anything")
    assert (response.status, response.errcode) == (400, "M_UNKNOWN"), response


def test_advertised_when_enabled(enabled: RunningServer) -> None:
    alice = register_user(enabled.base_url)
    assert alice.get(f"{V3}/capabilities").body["capabilities"]["m.get_login_token"] == {"enabled": True}
    flows = Client(enabled.base_url).get(LOGIN).body["flows"]
    assert {"type": "m.login.token", "get_login_token": True} in flows
    assert {"type": "m.login.password"} in flows


def test_token_signs_in_a_new_device_once(enabled: RunningServer) -> None:
    alice = register_user(enabled.base_url)
    first = alice.post(GET_TOKEN, {})
    assert first.status == 401 and first.body["flows"] == [{"stages": ["m.login.password"]}], first
    body = mint(alice).body
    assert set(body) == {"login_token", "expires_in_ms"} and body["expires_in_ms"] == 5 * 60 * 1000

    login = token_login(enabled.base_url, body["login_token"], initial_device_display_name="new phone")
    assert login.status == 200, login
    assert login.body["user_id"] == alice.user_id and login.body["device_id"] != alice.device_id
    new_device = Client(enabled.base_url, login.body["access_token"])
    assert new_device.get(f"{V3}/account/whoami").body["user_id"] == alice.user_id
    devices = {d["device_id"]: d for d in alice.get(f"{V3}/devices").body["devices"]}
    assert devices[login.body["device_id"]]["display_name"] == "new phone"

    again = token_login(enabled.base_url, body["login_token"])
    assert (again.status, again.errcode) == (403, "M_FORBIDDEN"), again


def test_wrong_password_gets_no_token(enabled: RunningServer) -> None:
    alice = register_user(enabled.base_url)
    session = alice.post(GET_TOKEN, {}).body["session"]
    response = alice.post(GET_TOKEN, {"auth": password_auth(alice, "not the password", session)})
    assert (response.status, response.errcode) == (401, "M_FORBIDDEN"), response
    assert "login_token" not in response.body


def test_uia_session_of_another_user_or_action_is_refused(enabled: RunningServer) -> None:
    alice, bob = register_user(enabled.base_url), register_user(enabled.base_url)
    bob_session = bob.post(GET_TOKEN, {}).body["session"]
    response = alice.post(GET_TOKEN, {"auth": password_auth(alice, PASSWORD, bob_session)})
    assert (response.status, response.errcode) == (400, "M_UNKNOWN"), response
    # Bob's password does not confirm Alice's request either.
    session = alice.post(GET_TOKEN, {}).body["session"]
    response = alice.post(GET_TOKEN, {"auth": password_auth(bob, PASSWORD, session)})
    assert (response.status, response.errcode) == (401, "M_FORBIDDEN"), response
    assert "login_token" not in response.body


def test_one_token_a_minute(enabled: RunningServer) -> None:
    alice = register_user(enabled.base_url)
    mint(alice)
    response = with_password_uia(alice, "POST", GET_TOKEN, {})
    assert (response.status, response.errcode) == (429, "M_LIMIT_EXCEEDED"), response
    assert response.body["retry_after_ms"] > 0


def test_needs_an_access_token(enabled: RunningServer) -> None:
    response = Client(enabled.base_url).post(GET_TOKEN, {})
    assert (response.status, response.errcode) == (401, "M_MISSING_TOKEN"), response
    response = Client(enabled.base_url, "not-a-token").post(GET_TOKEN, {})
    assert (response.status, response.errcode) == (401, "M_UNKNOWN_TOKEN"), response


def test_deactivated_account_cannot_spend_its_token(enabled: RunningServer) -> None:
    alice = register_user(enabled.base_url)
    token = mint(alice).body["login_token"]
    assert with_password_uia(alice, "POST", f"{V3}/account/deactivate", {}).status == 200
    response = token_login(enabled.base_url, token)
    assert (response.status, response.errcode) == (403, "M_USER_DEACTIVATED"), response


def test_without_uia_and_expiry(quick: RunningServer) -> None:
    alice = register_user(quick.base_url)
    response = alice.post(GET_TOKEN, {})
    assert response.status == 200 and response.body["expires_in_ms"] == 1000, response
    # The unstable MSC3882 path (older Element builds) is the same endpoint; an empty body is {}.
    bob = register_user(quick.base_url)
    unstable = bob.request("POST", UNSTABLE_GET_TOKEN)
    assert unstable.status == 200, unstable
    time.sleep(1.5)  # past the token's one-second life
    expired = token_login(quick.base_url, response.body["login_token"])
    assert (expired.status, expired.errcode) == (403, "M_FORBIDDEN"), expired


@pytest.mark.parametrize(("raw", "errcode"), [
    (b"not json", "M_NOT_JSON"),
    (b"[1, 2]", "M_NOT_JSON"),
    (b'{"auth": "password"}', "M_BAD_JSON"),
    (b'{"auth": {"type": "m.login.password", "session": 7}}', "M_BAD_JSON"),
    (b'{"auth": {"type": "m.login.password", "password": "\\ud800"}}', "M_BAD_JSON"),
])
def test_get_token_malformed_bodies(enabled: RunningServer, raw: bytes, errcode: str) -> None:
    alice = register_user(enabled.base_url)
    response = alice.request("POST", GET_TOKEN, raw=raw)
    assert (response.status, response.errcode) == (400, errcode), response


@pytest.mark.parametrize("body", [
    {"type": "m.login.token"},
    {"type": "m.login.token", "token": 12345},
    {"type": "m.login.token", "token": ["a"]},
    {"type": "m.login.token", "token": ""},
    {"type": "m.login.token", "token": "x", "device_id": 5},
    {"type": "m.login.token", "token": "x", "refresh_token": "yes"},
])
def test_token_login_wrong_types(enabled: RunningServer, body: dict[str, Any]) -> None:
    response = Client(enabled.base_url).post(LOGIN, body)
    assert (response.status, response.errcode) == (400, "M_BAD_JSON"), response


def test_unknown_token_is_forbidden(enabled: RunningServer) -> None:
    response = token_login(enabled.base_url, "vlt_made_up")
    assert (response.status, response.errcode) == (403, "M_FORBIDDEN"), response
