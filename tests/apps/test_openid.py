"""OpenID tokens: request one as a client, check it as a third party at /openid/userinfo."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted
import requests

from storage.engine import create_database
from storage.migrate import prepare_database
from storage.stores.openid_tokens import OpenIdTokenStore
from tests.support.client import Client, q
from tests.support.databases import ENGINES
from tests.support.rooms import V3, new_user
from tests.support.server import RunningServer, custom_server, free_port

USERINFO = "/_matrix/federation/v1/openid/userinfo"


@pytest.fixture(scope="module", params=ENGINES)
def openid_server(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose client listener also serves Synapse's ``openid`` resource."""
    directory = tmp_path_factory.mktemp(f"hs-openid-{request.param}")
    listeners = [{"port": free_port(), "bind_addresses": ["127.0.0.1"], "type": "http",
                  "resources": [{"names": ["client", "health", "openid"]}]}]
    with custom_server(directory, request.param, listeners=listeners) as running:
        yield running


def request_token(client: Client, user_id: str | None = None, body: Any = None, **kwargs: Any) -> Any:
    return client.post(f"{V3}/user/{q(user_id or client.user_id or '')}/openid/request_token",
                       {} if body is None else body, **kwargs)


def userinfo(server: RunningServer, token: str | None) -> Any:
    params = {} if token is None else {"access_token": token}
    response = requests.get(server.url(USERINFO), params=params, timeout=30)
    return response.status_code, response.json()


def test_token_names_its_user_to_a_third_party(openid_server: RunningServer) -> None:
    alice = new_user(openid_server.base_url)
    response = request_token(alice)
    assert response.status == 200, response
    body = response.body
    assert body["token_type"] == "Bearer" and body["matrix_server_name"] == openid_server.server_name
    assert body["expires_in"] == 3600 and isinstance(body["access_token"], str)
    assert userinfo(openid_server, body["access_token"]) == (200, {"sub": alice.user_id})


def test_each_request_gets_a_new_token_and_both_work(openid_server: RunningServer) -> None:
    bob = new_user(openid_server.base_url)
    first, second = (request_token(bob).body["access_token"] for _ in range(2))
    assert first != second
    for token in (first, second):
        assert userinfo(openid_server, token) == (200, {"sub": bob.user_id})


def test_openid_token_is_not_an_access_token(openid_server: RunningServer) -> None:
    carol = new_user(openid_server.base_url)
    token = request_token(carol).body["access_token"]
    whoami = carol.get(f"{V3}/account/whoami", token=token)
    assert (whoami.status, whoami.errcode) == (401, "M_UNKNOWN_TOKEN")
    # ... and an access token is not an OpenID token.
    assert carol.access_token is not None
    status, body = userinfo(openid_server, carol.access_token)
    assert (status, body["errcode"]) == (401, "M_UNKNOWN_TOKEN")


def test_unknown_and_missing_tokens(openid_server: RunningServer) -> None:
    status, body = userinfo(openid_server, "oid_nonsense")
    assert (status, body["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    status, body = userinfo(openid_server, None)
    assert (status, body["errcode"]) == (400, "M_MISSING_PARAM")


def test_only_for_yourself_and_only_when_logged_in(openid_server: RunningServer) -> None:
    dave, erin = new_user(openid_server.base_url), new_user(openid_server.base_url)
    other = request_token(dave, erin.user_id)
    assert (other.status, other.errcode) == (403, "M_FORBIDDEN")
    anonymous = request_token(dave, token=False)
    assert (anonymous.status, anonymous.errcode) == (401, "M_MISSING_TOKEN")
    bad = request_token(dave, token="syt_not_a_token")
    assert (bad.status, bad.errcode) == (401, "M_UNKNOWN_TOKEN")


def test_bad_bodies(openid_server: RunningServer) -> None:
    frank = new_user(openid_server.base_url)
    path = f"{V3}/user/{q(frank.user_id or '')}/openid/request_token"
    not_json = frank.post(path, raw=b"{nope")
    assert (not_json.status, not_json.errcode) == (400, "M_NOT_JSON")
    for body in ([], "x", 3):
        wrong = frank.post(path, body)
        assert wrong.status == 400 and wrong.errcode in ("M_BAD_JSON", "M_NOT_JSON"), wrong
    assert frank.post(path, raw=b"").status == 200


def test_client_only_listener_does_not_serve_userinfo(server: RunningServer) -> None:
    response = requests.get(server.url(USERINFO), params={"access_token": "x"}, timeout=30)
    assert response.status_code == 404 and response.json()["errcode"] == "M_UNRECOGNIZED"


class _Host:
    def __init__(self, db: Any) -> None:
        self.db = db

    def get(self, cls: Any) -> Any:
        raise NotImplementedError


@pytest_twisted.ensureDeferred
async def test_tokens_expire_and_expired_rows_are_dropped(database_config: dict[str, Any]) -> None:
    db = create_database(database_config)
    try:
        await prepare_database(db)
        store = OpenIdTokenStore(_Host(db))
        await store.add_token("h1", "@a:test", valid_until_ms=1_000, now_ms=0)
        assert await store.get_user_for_token("h1", now_ms=999) == "@a:test"
        assert await store.get_user_for_token("h1", now_ms=1_000) is None
        await store.add_token("h2", "@b:test", valid_until_ms=5_000, now_ms=2_000)
        rows = await db.execute("count", "SELECT token_hash FROM openid_tokens")
        assert [row[0] for row in rows] == ["h2"]
    finally:
        await db.close()
