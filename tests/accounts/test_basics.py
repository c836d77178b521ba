"""The first slice: register with dummy auth, log in with a password, whoami."""

from __future__ import annotations

from tests.support.client import Client, random_localpart, register_user
from tests.support.server import RunningServer

V3 = "/_matrix/client/v3"


def test_register_then_whoami(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    response = alice.get(f"{V3}/account/whoami")
    assert response.status == 200, response
    assert response.body == {"user_id": alice.user_id, "device_id": alice.device_id, "is_guest": False}


def test_whoami_accepts_query_token_and_rejects_bad_ones(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    anonymous = Client(server.base_url)
    by_query = anonymous.get(f"{V3}/account/whoami", params={"access_token": alice.access_token})
    assert by_query.status == 200 and by_query.body["user_id"] == alice.user_id
    assert anonymous.get(f"{V3}/account/whoami").errcode == "M_MISSING_TOKEN"
    wrong = anonymous.get(f"{V3}/account/whoami", token="vat_not-a-real-token")
    assert (wrong.status, wrong.errcode) == (401, "M_UNKNOWN_TOKEN")


def test_password_login_gives_a_working_token(server: RunningServer) -> None:
    localpart = random_localpart()
    register_user(server.base_url, localpart, password="s3cret pass")
    client = Client(server.base_url)
    response = client.post(f"{V3}/login", {"type": "m.login.password", "password": "s3cret pass",
                                           "identifier": {"type": "m.id.user", "user": localpart}})
    assert response.status == 200, response
    assert response.body["user_id"] == f"@{localpart}:{server.server_name}"
    client.access_token = response.body["access_token"]
    whoami = client.get(f"{V3}/account/whoami")
    assert whoami.body["device_id"] == response.body["device_id"]
    bad = client.post(f"{V3}/login", {"type": "m.login.password", "password": "nope",
                                      "identifier": {"type": "m.id.user", "user": localpart}})
    assert (bad.status, bad.errcode) == (403, "M_FORBIDDEN")
