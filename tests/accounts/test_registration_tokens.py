"""registration_requires_token: the m.login.registration_token stage and the admin API."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.accounts import V3, admin_register
from tests.support.client import Client, random_localpart
from tests.support.server import RunningServer

TOKENS = "/_synapse/admin/v1/registration_tokens"
VALIDITY = "/_matrix/client/v1/register/m.login.registration_token/validity"


@pytest.fixture(scope="module")
def admin(token_server: RunningServer) -> Client:
    response = admin_register(token_server, random_localpart("admin"), admin=True)
    assert response.status == 200, response
    return Client(token_server.base_url, response.body["access_token"], response.body["user_id"])


def register_with_token(server: RunningServer, token: str, session: str | None = None) -> Any:
    auth: dict[str, Any] = {"type": "m.login.registration_token", "token": token}
    if session:
        auth["session"] = session
    return Client(server.base_url).post(f"{V3}/register", {"username": random_localpart(), "auth": auth})


def test_flows_require_a_token(token_server: RunningServer) -> None:
    response = Client(token_server.base_url).post(f"{V3}/register", {})
    assert response.status == 401
    assert response.body["flows"] == [{"stages": ["m.login.registration_token"]}]
    dummy = Client(token_server.base_url).post(f"{V3}/register", {"auth": {"type": "m.login.dummy"}})
    assert dummy.status == 401


def test_admin_creates_tokens_and_they_are_spent(token_server: RunningServer, admin: Client) -> None:
    created = admin.post(f"{TOKENS}/new", {"uses_allowed": 1})
    assert created.status == 200, created
    token = created.body["token"]
    assert len(token) == 16 and created.body["uses_allowed"] == 1 and created.body["completed"] == 0
    anonymous = Client(token_server.base_url)
    assert anonymous.get(VALIDITY, params={"token": token}).body == {"valid": True}
    first = register_with_token(token_server, token)
    assert first.status == 200, first
    assert anonymous.get(VALIDITY, params={"token": token}).body == {"valid": False}
    second = register_with_token(token_server, token)
    assert (second.status, second.errcode) == (401, "M_UNAUTHORIZED")
    assert admin.get(f"{TOKENS}/{token}").body["completed"] == 1


def test_named_token_listing_and_deletion(token_server: RunningServer, admin: Client) -> None:
    name = random_localpart("tok")
    assert admin.post(f"{TOKENS}/new", {"token": name}).body["token"] == name
    assert admin.post(f"{TOKENS}/new", {"token": name}).status == 400
    assert name in [t["token"] for t in admin.get(TOKENS).body["registration_tokens"]]
    assert register_with_token(token_server, name).status == 200
    assert register_with_token(token_server, name).status == 200  # unlimited uses
    assert admin.delete(f"{TOKENS}/{name}").status == 200
    assert admin.get(f"{TOKENS}/{name}").errcode == "M_NOT_FOUND"
    assert register_with_token(token_server, name).status == 401


def test_unknown_token_fails_the_stage(token_server: RunningServer) -> None:
    response = register_with_token(token_server, "never-issued")
    assert (response.status, response.errcode) == (401, "M_UNAUTHORIZED")
    assert response.body["flows"] == [{"stages": ["m.login.registration_token"]}]


def test_token_admin_api_needs_an_admin(token_server: RunningServer, admin: Client) -> None:
    token = admin.post(f"{TOKENS}/new", {}).body["token"]
    user = register_with_token(token_server, token)
    regular = Client(token_server.base_url, user.body["access_token"])
    assert regular.post(f"{TOKENS}/new", {}).errcode == "M_FORBIDDEN"
    assert Client(token_server.base_url).get(TOKENS).errcode == "M_MISSING_TOKEN"


@pytest.mark.parametrize("body", [{"token": "has space"}, {"token": 5}, {"uses_allowed": -1},
                                  {"uses_allowed": "1"}, {"expiry_time": 1}, {"length": 0},
                                  {"length": 65}, {"length": "x"}])
def test_bad_token_requests_are_client_errors(admin: Client, body: dict[str, Any]) -> None:
    response = admin.post(f"{TOKENS}/new", body)
    assert response.status == 400, response
