"""Synapse's user admin API over HTTP, on both engines: shapes, effects, refusals."""

from __future__ import annotations

import pytest

from tests.support.accounts import PASSWORD
from tests.support.admin import ADMIN_V1, ADMIN_V2, new_admin, refused_to_others
from tests.support.client import Client, q, random_localpart, register_user
from tests.support.rooms import create_room
from tests.support.server import RunningServer

V3 = "/_matrix/client/v3"


@pytest.fixture(scope="module")
def admin(server: RunningServer) -> Client:
    return new_admin(server)


def login(server: RunningServer, user_id: str, password: str) -> Client | None:
    response = Client(server.base_url).post(f"{V3}/login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": user_id}, "password": password})
    if response.status != 200:
        return None
    return Client(server.base_url, response.body["access_token"], user_id, response.body["device_id"])


def test_create_then_modify_a_user(server: RunningServer, admin: Client) -> None:
    user_id = f"@{random_localpart('made')}:{server.server_name}"
    created = admin.put(f"{ADMIN_V2}/users/{q(user_id)}", {"password": "pass word one", "displayname": "Made"})
    assert created.status == 201, created
    assert created.body["name"] == user_id and created.body["displayname"] == "Made"
    assert created.body["admin"] is False and created.body["deactivated"] is False
    for key in ("creation_ts", "is_guest", "threepids", "external_ids", "avatar_url", "user_type", "shadow_banned"):
        assert key in created.body
    assert login(server, user_id, "pass word one") is not None
    modified = admin.put(f"{ADMIN_V2}/users/{q(user_id)}", {"admin": True, "avatar_url": "mxc://x/y"})
    assert modified.status == 200 and modified.body["admin"] is True and modified.body["avatar_url"] == "mxc://x/y"
    assert admin.get(f"{ADMIN_V1}/users/{q(user_id)}/admin").body == {"admin": True}
    profile = Client(server.base_url).get(f"{V3}/profile/{q(user_id)}")
    assert profile.body == {"displayname": "Made", "avatar_url": "mxc://x/y"}


def test_list_and_search(server: RunningServer, admin: Client) -> None:
    tag = random_localpart("zeta")
    made = [register_user(server.base_url, f"{tag}{i}") for i in range(3)]
    listed = admin.get(f"{ADMIN_V2}/users", params={"name": tag, "limit": 2})
    assert listed.status == 200, listed
    assert listed.body["total"] == 3 and [u["name"] for u in listed.body["users"]] == [c.user_id for c in made[:2]]
    assert listed.body["next_token"] == "2"
    rest = admin.get(f"{ADMIN_V2}/users", params={"name": tag, "from": listed.body["next_token"]})
    assert [u["name"] for u in rest.body["users"]] == [made[2].user_id] and "next_token" not in rest.body
    entry = rest.body["users"][0]
    assert {"name", "admin", "deactivated", "is_guest", "displayname", "creation_ts", "avatar_url"} <= set(entry)
    backwards = admin.get(f"{ADMIN_V2}/users", params={"user_id": tag, "dir": "b"})
    assert [u["name"] for u in backwards.body["users"]] == [c.user_id for c in reversed(made)]
    admins = admin.get(f"{ADMIN_V2}/users", params={"admins": "true", "limit": 1000}).body["users"]
    assert admin.user_id in [u["name"] for u in admins] and all(u["admin"] for u in admins)
    for bad in ({"order_by": "password"}, {"dir": "x"}, {"from": "-1"}, {"limit": "many"}, {"admins": "maybe"}):
        response = admin.get(f"{ADMIN_V2}/users", params=bad)
        assert (response.status, response.errcode) == (400, "M_INVALID_PARAM"), bad


def test_deactivate_with_erase(server: RunningServer, admin: Client) -> None:
    user = register_user(server.base_url)
    done = admin.post(f"{ADMIN_V1}/deactivate/{q(user.user_id)}", {"erase": True})
    assert done.status == 200 and done.body == {"id_server_unbind_result": "success"}
    assert user.get(f"{V3}/account/whoami").status == 401
    queried = admin.get(f"{ADMIN_V2}/users/{q(user.user_id)}").body
    assert queried["deactivated"] is True and queried["displayname"] is None
    assert user.user_id not in [u["name"] for u in admin.get(f"{ADMIN_V2}/users", params={"limit": 1000}).body["users"]]
    with_deactivated = admin.get(f"{ADMIN_V2}/users", params={"deactivated": "true", "limit": 1000}).body["users"]
    assert user.user_id in [u["name"] for u in with_deactivated]


def test_reset_password_logs_out(server: RunningServer, admin: Client) -> None:
    user = register_user(server.base_url)
    reset = admin.post(f"{ADMIN_V1}/reset_password/{q(user.user_id)}", {"new_password": "brand new pass"})
    assert reset.status == 200 and reset.body == {}
    assert user.get(f"{V3}/account/whoami").status == 401
    assert login(server, user.user_id, PASSWORD) is None
    assert login(server, user.user_id, "brand new pass") is not None
    missing = admin.post(f"{ADMIN_V1}/reset_password/{q(user.user_id)}", {})
    assert (missing.status, missing.errcode) == (400, "M_MISSING_PARAM")


def test_whois_devices_and_joined_rooms(server: RunningServer, admin: Client) -> None:
    user = register_user(server.base_url, device_id="PHONE")
    assert user.get(f"{V3}/account/whoami").status == 200
    room_id = create_room(user)
    whois = admin.get(f"{ADMIN_V1}/whois/{q(user.user_id)}")
    assert whois.status == 200 and whois.body["user_id"] == user.user_id
    connections = whois.body["devices"][""]["sessions"][0]["connections"]
    assert [c["ip"] for c in connections] == ["127.0.0.1"] and connections[0]["last_seen"] > 0
    devices = admin.get(f"{ADMIN_V2}/users/{q(user.user_id)}/devices")
    assert devices.body["total"] == 1 and devices.body["devices"][0]["device_id"] == "PHONE"
    assert devices.body["devices"][0]["user_id"] == user.user_id
    assert admin.put(f"{ADMIN_V2}/users/{q(user.user_id)}/devices/PHONE", {"display_name": "Pocket"}).status == 200
    assert admin.get(f"{ADMIN_V2}/users/{q(user.user_id)}/devices/PHONE").body["display_name"] == "Pocket"
    assert admin.get(f"{ADMIN_V1}/users/{q(user.user_id)}/joined_rooms").body == {"joined_rooms": [room_id],
                                                                                   "total": 1}
    assert admin.post(f"{ADMIN_V2}/users/{q(user.user_id)}/delete_devices", {"devices": ["PHONE"]}).status == 200
    assert user.get(f"{V3}/account/whoami").status == 401
    assert admin.get(f"{ADMIN_V2}/users/{q(user.user_id)}/devices").body == {"devices": [], "total": 0}
    gone = admin.get(f"{ADMIN_V2}/users/{q(user.user_id)}/devices/PHONE")
    assert (gone.status, gone.errcode) == (404, "M_NOT_FOUND")


def test_login_as_a_user(server: RunningServer, admin: Client) -> None:
    user = register_user(server.base_url)
    token = admin.post(f"{ADMIN_V1}/users/{q(user.user_id)}/login", {})
    assert token.status == 200, token
    puppet = Client(server.base_url, token.body["access_token"])
    assert puppet.get(f"{V3}/account/whoami").body["user_id"] == user.user_id


def test_set_admin_takes_effect_at_once(server: RunningServer, admin: Client) -> None:
    user = register_user(server.base_url)
    assert user.get(f"{ADMIN_V2}/users").status == 403
    assert admin.put(f"{ADMIN_V1}/users/{q(user.user_id)}/admin", {"admin": True}).status == 200
    assert user.get(f"{ADMIN_V2}/users").status == 200
    demote_self = admin.put(f"{ADMIN_V1}/users/{q(admin.user_id)}/admin", {"admin": False})
    assert demote_self.status == 400


def test_bad_input(server: RunningServer, admin: Client) -> None:
    remote = admin.get(f"{ADMIN_V2}/users/{q('@someone:elsewhere.example')}")
    assert (remote.status, remote.errcode) == (400, "M_INVALID_PARAM")
    unknown = admin.get(f"{ADMIN_V2}/users/{q('@nobody' + random_localpart() + ':' + server.server_name)}")
    assert (unknown.status, unknown.errcode) == (404, "M_NOT_FOUND")
    assert admin.get(f"{ADMIN_V2}/users/{q('not-a-user-id')}").errcode == "M_INVALID_PARAM"
    user_id = f"@{random_localpart()}:{server.server_name}"
    wrong_type = admin.put(f"{ADMIN_V2}/users/{q(user_id)}", {"admin": "yes"})
    assert (wrong_type.status, wrong_type.errcode) == (400, "M_BAD_JSON")
    not_json = admin.request("PUT", f"{ADMIN_V2}/users/{q(user_id)}", raw=b"{nope")
    assert (not_json.status, not_json.errcode) == (400, "M_NOT_JSON")
    devices = admin.post(f"{ADMIN_V2}/users/{q(admin.user_id)}/delete_devices", {"devices": [1]})
    assert (devices.status, devices.errcode) == (400, "M_BAD_JSON")


ENDPOINTS = [
    ("GET", f"{ADMIN_V2}/users"), ("GET", f"{ADMIN_V2}/users/@a:test.local"),
    ("PUT", f"{ADMIN_V2}/users/@a:test.local"), ("POST", f"{ADMIN_V1}/deactivate/@a:test.local"),
    ("POST", f"{ADMIN_V1}/reset_password/@a:test.local"), ("GET", f"{ADMIN_V1}/users/@a:test.local/admin"),
    ("PUT", f"{ADMIN_V1}/users/@a:test.local/admin"), ("GET", f"{ADMIN_V1}/whois/@a:test.local"),
    ("GET", f"{ADMIN_V2}/users/@a:test.local/devices"), ("POST", f"{ADMIN_V2}/users/@a:test.local/delete_devices"),
    ("GET", f"{ADMIN_V2}/users/@a:test.local/devices/D"), ("PUT", f"{ADMIN_V2}/users/@a:test.local/devices/D"),
    ("DELETE", f"{ADMIN_V2}/users/@a:test.local/devices/D"), ("GET", f"{ADMIN_V1}/users/@a:test.local/joined_rooms"),
    ("POST", f"{ADMIN_V1}/users/@a:test.local/login"),
    ("POST", f"{ADMIN_V1}/users/@a:test.local/shadow_ban"), ("DELETE", f"{ADMIN_V1}/users/@a:test.local/shadow_ban"),
    ("GET", f"{ADMIN_V1}/users/@a:test.local/override_ratelimit"),
    ("POST", f"{ADMIN_V1}/users/@a:test.local/override_ratelimit"),
    ("DELETE", f"{ADMIN_V1}/users/@a:test.local/override_ratelimit"),
    ("GET", f"{ADMIN_V1}/statistics/users/media"), ("POST", f"{ADMIN_V1}/send_server_notice"),
    ("PUT", f"{ADMIN_V1}/send_server_notice/txn1"),
    ("GET", f"{ADMIN_V1}/registration_tokens"), ("POST", f"{ADMIN_V1}/registration_tokens/new"),
    ("GET", f"{ADMIN_V1}/registration_tokens/abcd"), ("PUT", f"{ADMIN_V1}/registration_tokens/abcd"),
    ("DELETE", f"{ADMIN_V1}/registration_tokens/abcd"),
    ("GET", f"{ADMIN_V1}/event_reports"), ("GET", f"{ADMIN_V1}/event_reports/1"),
    ("DELETE", f"{ADMIN_V1}/event_reports/1"),
    ("GET", f"{ADMIN_V1}/background_updates/status"), ("GET", f"{ADMIN_V1}/jobs"),
]


def test_non_admins_are_refused_everywhere(server: RunningServer) -> None:
    for method, path in ENDPOINTS:
        refused_to_others(server, method, path, {} if method in ("PUT", "POST", "DELETE") else None)
