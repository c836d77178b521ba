"""GET /voip/turnServer: Synapse's turn_* keys, checked against a real coturn on loopback.

The credentials the server hands out must let turnutils_uclient (from Debian's coturn
package) allocate a relay on a coturn started here with ``use-auth-secret``, and a
tampered password must not. Without coturn the coturn tests skip (they fail instead when
VIGNETTE_REQUIRE_COTURN=1, as in CI, where .ci/run installs it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.calls import Coturn, running_coturn
from tests.support.client import Client
from tests.support.databases import ENGINES
from tests.support.rooms import V3, new_user
from tests.support.server import RunningServer, custom_server
from tests.test_config import base_config, run_server

SECRET = "a-shared-secret-for-tests"
LIFETIME_S = 600
TURN = f"{V3}/voip/turnServer"


@pytest.fixture(scope="module")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    with running_coturn(tmp_path_factory.mktemp("coturn"), "--use-auth-secret",
                        f"--static-auth-secret={SECRET}") as turn:
        yield turn


def _serve(tmp_path_factory: pytest.TempPathFactory, engine: str, **config: object) -> Iterator[RunningServer]:
    with custom_server(tmp_path_factory.mktemp(f"turn-{engine}"), engine, **config) as running:
        yield running


@pytest.fixture(scope="module", params=ENGINES)
def turn_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                coturn: Coturn) -> Iterator[RunningServer]:
    yield from _serve(tmp_path_factory, request.param, turn_uris=[coturn.uri], turn_shared_secret=SECRET,
                      turn_user_lifetime=f"{LIFETIME_S}s", turn_allow_guests=False, allow_guest_access=True)


def register_guest(base_url: str) -> Client:
    client = Client(base_url)
    response = client.post(f"{V3}/register", {}, params={"kind": "guest"})
    assert response.status == 200, response
    client.access_token = response.body["access_token"]
    client.user_id = response.body["user_id"]
    return client


def test_shared_secret_credentials_allocate_on_coturn(turn_server: RunningServer, coturn: Coturn) -> None:
    user = new_user(turn_server.base_url)
    before = int(time.time())
    response = user.get(TURN)
    after = int(time.time())
    assert response.status == 200, response
    body = response.body
    assert set(body) == {"username", "password", "ttl", "uris"}
    assert body["uris"] == [coturn.uri]
    assert body["ttl"] == LIFETIME_S
    expiry, _, user_id = body["username"].partition(":")
    assert user_id == user.user_id
    assert before + LIFETIME_S <= int(expiry) <= after + LIFETIME_S + 1
    expected = base64.b64encode(hmac.new(SECRET.encode(), body["username"].encode(), hashlib.sha1).digest())
    assert body["password"] == expected.decode()

    allocated = coturn.allocate(body["username"], body["password"])
    assert allocated.returncode == 0, allocated.stdout + allocated.stderr
    assert "tot_recv_msgs=" in allocated.stdout + allocated.stderr

    tampered = coturn.allocate(body["username"], body["password"][:-4] + "AAA=")
    assert tampered.returncode != 0
    other_user = coturn.allocate(body["username"].replace(user.user_id or "", "@mallory:test.local"),
                                 body["password"])
    assert other_user.returncode != 0


def test_guests_are_refused_when_turn_allow_guests_is_false(turn_server: RunningServer) -> None:
    guest = register_guest(turn_server.base_url)
    response = guest.get(TURN)
    assert response.status == 403, response
    assert response.errcode == "M_GUEST_ACCESS_FORBIDDEN"


def test_turn_server_needs_a_valid_token(turn_server: RunningServer) -> None:
    anonymous = Client(turn_server.base_url)
    assert anonymous.get(TURN).errcode == "M_MISSING_TOKEN"
    anonymous.access_token = "not-a-token"
    response = anonymous.get(TURN)
    assert response.status == 401 and response.errcode == "M_UNKNOWN_TOKEN"


def test_no_turn_configured_answers_an_empty_object(server: RunningServer) -> None:
    user = new_user(server.base_url)
    response = user.get(TURN)
    assert response.status == 200 and response.body == {}
    assert user.get("/_matrix/client/r0/voip/turnServer").body == {}


def test_static_credentials_allocate_on_coturn(tmp_path_factory: pytest.TempPathFactory) -> None:
    directory = tmp_path_factory.mktemp("static-turn")
    with running_coturn(directory, "--lt-cred-mech", "--user=calls:static-pass") as turn:
        for running in _serve(tmp_path_factory, "sqlite3", turn_uris=[turn.uri], turn_username="calls",
                              turn_password="static-pass", allow_guest_access=True):
            guest = register_guest(running.base_url)
            response = guest.get(TURN)  # turn_allow_guests defaults to true
            assert response.status == 200, response
            assert response.body == {"username": "calls", "password": "static-pass", "ttl": 3600,
                                     "uris": [turn.uri]}
            allocated = turn.allocate("calls", "static-pass")
            assert allocated.returncode == 0, allocated.stdout + allocated.stderr
            assert turn.allocate("calls", "wrong-pass").returncode != 0


def test_secret_read_from_a_file(tmp_path_factory: pytest.TempPathFactory) -> None:
    directory = tmp_path_factory.mktemp("secret-file")
    secret_file = directory / "turn.secret"
    secret_file.write_text(SECRET + "\n")
    for running in _serve(tmp_path_factory, "sqlite3", turn_uris=["turn:turn.example.org"],
                          turn_shared_secret_path=str(secret_file)):
        body = new_user(running.base_url).get(TURN).body
        expected = base64.b64encode(hmac.new(SECRET.encode(), body["username"].encode(), hashlib.sha1).digest())
        assert body["password"] == expected.decode()


@pytest.mark.parametrize("keys, problem", [
    ({"turn_shared_secret": "x", "turn_shared_secret_path": "/nonexistent"}, "not both"),
    ({"turn_shared_secret_path": "/nonexistent/turn.secret"}, "cannot read"),
    ({"turn_uris": "turn:one.example.org"}, "turn_uris"),
    ({"turn_user_lifetime": "soon"}, "turn_user_lifetime"),
])
def test_bad_turn_config_is_one_line(tmp_path: Path, keys: dict[str, object], problem: str) -> None:
    path = tmp_path / "homeserver.yaml"
    path.write_text(yaml.safe_dump(base_config(tmp_path) | keys))
    result = run_server(path)
    assert result.returncode == 1
    assert problem in result.stderr
    assert "Traceback" not in result.stderr
