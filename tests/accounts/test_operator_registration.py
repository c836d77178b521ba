"""Shared-secret registration (Synapse's admin API and tools) with open registration off."""

from __future__ import annotations

import subprocess

from homeserver.handlers.accounts.admin import shared_secret_mac
from tests.support.accounts import (
    ADMIN_REGISTER,
    SECRET,
    V3,
    admin_register,
    password_login,
    run_our_register_tool,
)
from tests.support.client import Client, random_localpart
from tests.support.server import RunningServer
from tests.support.synapse_tool import synapse_register_tool


def test_open_registration_is_off(closed_server: RunningServer) -> None:
    response = Client(closed_server.base_url).post(f"{V3}/register", {"username": random_localpart(),
                                                                      "auth": {"type": "m.login.dummy"}})
    assert (response.status, response.errcode) == (403, "M_FORBIDDEN")


def test_shared_secret_registration_works_when_registration_is_off(closed_server: RunningServer) -> None:
    localpart = random_localpart()
    response = admin_register(closed_server, localpart)
    assert response.status == 200, response
    assert response.body["user_id"] == f"@{localpart}:{closed_server.server_name}"
    assert Client(closed_server.base_url, response.body["access_token"]).get(
        f"{V3}/account/whoami").status == 200
    assert password_login(closed_server.base_url, localpart).status == 200
    assert admin_register(closed_server, localpart).errcode == "M_USER_IN_USE"


def test_bad_mac_and_reused_nonce_are_refused(closed_server: RunningServer) -> None:
    client = Client(closed_server.base_url)
    nonce = client.get(ADMIN_REGISTER).body["nonce"]
    body = {"nonce": nonce, "username": random_localpart(), "password": "pw", "admin": False,
            "mac": shared_secret_mac("wrong secret", nonce, "x", "pw", False)}
    assert client.post(ADMIN_REGISTER, body).status == 403
    body["mac"] = shared_secret_mac(SECRET, nonce, body["username"], "pw", False)
    reused = client.post(ADMIN_REGISTER, body)
    assert reused.status == 400, reused
    assert client.post(ADMIN_REGISTER, {**body, "nonce": "made-up"}).status == 400


def test_malformed_admin_registration_is_a_client_error(closed_server: RunningServer) -> None:
    client = Client(closed_server.base_url)
    for raw in (b"nope", b"{}", b"{\"nonce\": 1, \"username\": \"a\", \"password\": \"b\", \"mac\": \"c\"}",
                b"{\"nonce\": \"n\", \"username\": \"a\", \"password\": \"b\", \"mac\": \"c\", \"admin\": 1}"):
        response = client.post(ADMIN_REGISTER, raw=raw)
        assert 400 <= response.status < 500, (raw, response)


def test_our_register_new_matrix_user_with_key_and_config(closed_server: RunningServer) -> None:
    first, second = random_localpart(), random_localpart()
    by_key = run_our_register_tool("-u", first, "-p", "pw one", "--no-admin", "-k", SECRET,
                                   closed_server.base_url)
    assert by_key.returncode == 0, by_key.stdout + by_key.stderr
    by_config = run_our_register_tool("-u", second, "-p", "pw two", "-a", "-c",
                                      str(closed_server.config_path), closed_server.base_url)
    assert by_config.returncode == 0, by_config.stdout + by_config.stderr
    assert password_login(closed_server.base_url, first, "pw one").status == 200
    assert password_login(closed_server.base_url, second, "pw two").status == 200
    wrong = run_our_register_tool("-u", random_localpart(), "-p", "x", "--no-admin", "-k", "not the secret",
                                  closed_server.base_url)
    assert wrong.returncode == 1 and "HMAC" in wrong.stderr
    from_config_only = run_our_register_tool("-u", random_localpart(), "-p", "pw", "--no-admin", "-c",
                                             str(closed_server.config_path))
    assert from_config_only.returncode == 0, from_config_only.stdout + from_config_only.stderr
    exists = run_our_register_tool("-u", first, "-p", "x", "--no-admin", "--exists-ok", "-k", SECRET,
                                   closed_server.base_url)
    assert exists.returncode == 0, exists.stderr


def test_synapses_own_register_new_matrix_user(closed_server: RunningServer) -> None:
    tool = synapse_register_tool()
    regular, admin = random_localpart("syn"), random_localpart("synadmin")
    for localpart, flag in ((regular, "--no-admin"), (admin, "-a")):
        result = subprocess.run([str(tool), "-u", localpart, "-p", "synapse pw", flag, "-k", SECRET,
                                 closed_server.base_url], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Success" in result.stdout
    login = password_login(closed_server.base_url, admin, "synapse pw")
    assert login.status == 200
    # The admin flag took effect: only admins may use the registration-token admin API.
    admin_client = Client(closed_server.base_url, login.body["access_token"])
    assert admin_client.get("/_synapse/admin/v1/registration_tokens").status == 200
    regular_login = password_login(closed_server.base_url, regular, "synapse pw")
    regular_client = Client(closed_server.base_url, regular_login.body["access_token"])
    assert regular_client.get("/_synapse/admin/v1/registration_tokens").errcode == "M_FORBIDDEN"
    config_result = subprocess.run([str(tool), "-u", random_localpart("syncfg"), "-p", "pw", "--no-admin",
                                    "-c", str(closed_server.config_path), closed_server.base_url],
                                   capture_output=True, text=True, timeout=120)
    assert config_result.returncode == 0, config_result.stdout + config_result.stderr


def test_guest_registration_when_allowed(closed_server: RunningServer) -> None:
    response = Client(closed_server.base_url).post(f"{V3}/register", {}, params={"kind": "guest"})
    assert response.status == 200, response
    guest = Client(closed_server.base_url, response.body["access_token"])
    assert guest.get(f"{V3}/account/whoami").body["is_guest"] is True
    assert guest.post(f"{V3}/user_directory/search", {"search_term": "a"}).errcode == "M_GUEST_ACCESS_FORBIDDEN"
