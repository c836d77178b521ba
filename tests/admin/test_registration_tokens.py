"""The registration tokens admin API's update and filtered listing (create, read and delete
are tested in tests/accounts/test_registration_tokens.py)."""

from __future__ import annotations

import time

import pytest

from tests.support.admin import ADMIN_V1, new_admin, refused_to_others
from tests.support.client import Client, random_localpart
from tests.support.server import RunningServer

TOKENS = f"{ADMIN_V1}/registration_tokens"


@pytest.fixture(scope="module")
def admin(server: RunningServer) -> Client:
    return new_admin(server)


def test_update_and_filter(server: RunningServer, admin: Client) -> None:
    name = random_localpart("tok")
    created = admin.post(f"{TOKENS}/new", {"token": name, "uses_allowed": 5})
    assert created.status == 200, created
    future = int(time.time() * 1000) + 3_600_000
    updated = admin.put(f"{TOKENS}/{name}", {"uses_allowed": 0, "expiry_time": future})
    assert updated.status == 200, updated
    assert updated.body == {"token": name, "uses_allowed": 0, "pending": 0, "completed": 0, "expiry_time": future}
    assert admin.get(f"{TOKENS}/{name}").body["uses_allowed"] == 0
    invalid = [t["token"] for t in admin.get(TOKENS, params={"valid": "false"}).body["registration_tokens"]]
    valid = [t["token"] for t in admin.get(TOKENS, params={"valid": "true"}).body["registration_tokens"]]
    assert name in invalid and name not in valid
    unlimited = admin.put(f"{TOKENS}/{name}", {"uses_allowed": None})
    assert unlimited.body["uses_allowed"] is None and unlimited.body["expiry_time"] == future
    valid = [t["token"] for t in admin.get(TOKENS, params={"valid": "true"}).body["registration_tokens"]]
    assert name in valid


def test_bad_updates(server: RunningServer, admin: Client) -> None:
    name = random_localpart("tok")
    admin.post(f"{TOKENS}/new", {"token": name})
    for body, errcode in (({"uses_allowed": -1}, "M_INVALID_PARAM"), ({"uses_allowed": "2"}, "M_BAD_JSON"),
                          ({"expiry_time": 1}, "M_INVALID_PARAM"), ({"expiry_time": True}, "M_BAD_JSON")):
        response = admin.put(f"{TOKENS}/{name}", body)
        assert (response.status, response.errcode) == (400, errcode), body
    missing = admin.put(f"{TOKENS}/{random_localpart('none')}", {"uses_allowed": 1})
    assert (missing.status, missing.errcode) == (404, "M_NOT_FOUND")
    assert admin.get(TOKENS, params={"valid": "maybe"}).errcode == "M_INVALID_PARAM"
    for method, path in (("PUT", f"{TOKENS}/{name}"), ("GET", TOKENS), ("GET", f"{TOKENS}/{name}"),
                         ("POST", f"{TOKENS}/new"), ("DELETE", f"{TOKENS}/{name}")):
        refused_to_others(server, method, path, {} if method in ("PUT", "POST") else None)
