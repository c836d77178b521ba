"""Helpers for account tests: logging in, answering UIA, servers with special configs."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from homeserver.handlers.accounts.admin import shared_secret_mac
from tests.support.client import Client, Response
from tests.support.server import (
    REPO_ROOT,
    RunningServer,
    custom_server,  # noqa: F401  (its first home: many modules import it here)
    server_env,
)

V3 = "/_matrix/client/v3"
PASSWORD = "correct horse battery"
SECRET = "test-shared-secret"  # registration_shared_secret in tests/support/server.write_config
ADMIN_REGISTER = "/_synapse/admin/v1/register"


def password_login(base_url: str, user: Any, password: str = PASSWORD, **extra: Any) -> Response:
    """POST /login with m.login.password; ``user`` is an identifier dict or a legacy user string."""
    body: dict[str, Any] = {"type": "m.login.password", "password": password, **extra}
    if isinstance(user, dict):
        body["identifier"] = user
    else:
        body["user"] = user
    return Client(base_url).post(f"{V3}/login", body)


def logged_in(base_url: str, localpart: str, password: str = PASSWORD, **extra: Any) -> Client:
    response = password_login(base_url, {"type": "m.id.user", "user": localpart}, password, **extra)
    assert response.status == 200, response
    return Client(base_url, response.body["access_token"], response.body["user_id"], response.body["device_id"])


def password_auth(client: Client, password: str = PASSWORD, session: str | None = None) -> dict[str, Any]:
    auth: dict[str, Any] = {"type": "m.login.password", "password": password,
                            "identifier": {"type": "m.id.user", "user": client.user_id}}
    if session is not None:
        auth["session"] = session
    return auth


def with_password_uia(client: Client, method: str, path: str, body: dict[str, Any],
                      password: str = PASSWORD) -> Response:
    """Make a UIA-protected request the way a client does: 401 first, then the password stage."""
    first = client.request(method, path, body)
    assert first.status == 401, first
    assert first.body["flows"] == [{"stages": ["m.login.password"]}]
    return client.request(method, path, {**body, "auth": password_auth(client, password, first.body["session"])})


def admin_register(server: RunningServer, username: str, password: str = PASSWORD, admin: bool = False,
                   secret: str = SECRET) -> Response:
    """Register through the shared-secret admin API, as register_new_matrix_user does."""
    client = Client(server.base_url)
    nonce = client.get(ADMIN_REGISTER).body["nonce"]
    return client.post(ADMIN_REGISTER, {"nonce": nonce, "username": username, "password": password,
                                        "admin": admin,
                                        "mac": shared_secret_mac(secret, nonce, username, password, admin)})


def localpart_of(user_id: str) -> str:
    return user_id[1:].split(":", 1)[0]


def run_our_register_tool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run Vignette's register_new_matrix_user (the console script's entry point)."""
    return subprocess.run([sys.executable, "-c", "import sys; from homeserver.cli.register_user import main;"
                           " sys.exit(main())", *args],
                          capture_output=True, text=True, env=server_env(), cwd=str(REPO_ROOT), timeout=60)
