"""Device lifecycle: list, rename, delete (with password UIA), and token revocation."""

from __future__ import annotations

import pytest

from tests.support.accounts import V3, localpart_of, logged_in, password_auth, with_password_uia
from tests.support.client import register_user
from tests.support.server import RunningServer


def test_list_get_and_rename(server: RunningServer) -> None:
    alice = register_user(server.base_url, device_id="DESK")
    listed = alice.get(f"{V3}/devices")
    assert listed.status == 200
    assert [d["device_id"] for d in listed.body["devices"]] == ["DESK"]
    assert alice.put(f"{V3}/devices/DESK", {"display_name": "Desk computer"}).status == 200
    device = alice.get(f"{V3}/devices/DESK")
    assert device.body["device_id"] == "DESK" and device.body["display_name"] == "Desk computer"
    assert alice.get(f"{V3}/devices/NOPE").errcode == "M_NOT_FOUND"
    assert alice.put(f"{V3}/devices/NOPE", {"display_name": "x"}).errcode == "M_NOT_FOUND"


def test_devices_of_others_are_invisible(server: RunningServer) -> None:
    alice = register_user(server.base_url, device_id="ALICEDEV")
    bob = register_user(server.base_url)
    assert bob.get(f"{V3}/devices/ALICEDEV").errcode == "M_NOT_FOUND"
    assert bob.put(f"{V3}/devices/ALICEDEV", {"display_name": "mine"}).errcode == "M_NOT_FOUND"
    # A device without a name leaves the key out: the spec allows a string or nothing, never null.
    assert "display_name" not in alice.get(f"{V3}/devices/ALICEDEV").body
    assert all("display_name" not in device for device in alice.get(f"{V3}/devices").body["devices"])


def test_deleting_a_device_needs_the_password_and_kills_its_token(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    phone = logged_in(server.base_url, localpart_of(alice.user_id))
    first = alice.delete(f"{V3}/devices/{phone.device_id}")
    assert first.status == 401 and first.body["flows"] == [{"stages": ["m.login.password"]}]
    wrong = alice.delete(f"{V3}/devices/{phone.device_id}",
                         {"auth": password_auth(alice, "wrong", first.body["session"])})
    assert (wrong.status, wrong.errcode) == (401, "M_FORBIDDEN")
    assert wrong.body["flows"] == [{"stages": ["m.login.password"]}]
    assert phone.get(f"{V3}/account/whoami").status == 200
    done = alice.delete(f"{V3}/devices/{phone.device_id}",
                        {"auth": password_auth(alice, session=first.body["session"])})
    assert done.status == 200, done
    assert phone.get(f"{V3}/account/whoami").errcode == "M_UNKNOWN_TOKEN"
    assert [d["device_id"] for d in alice.get(f"{V3}/devices").body["devices"]] == [alice.device_id]


def test_password_of_another_user_does_not_pass_uia(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    auth = password_auth(bob)  # bob's identity and password, on alice's session
    response = alice.post(f"{V3}/delete_devices", {"devices": [alice.device_id], "auth": auth})
    assert response.status == 401 and response.errcode == "M_FORBIDDEN"
    assert alice.get(f"{V3}/account/whoami").status == 200


def test_uia_session_cannot_be_reused_for_another_action(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    session = alice.post(f"{V3}/delete_devices", {"devices": []}).body["session"]
    response = alice.post(f"{V3}/account/password",
                          {"new_password": "x", "auth": password_auth(alice, session=session)})
    assert response.status == 400


def test_delete_devices_in_bulk(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    others = [logged_in(server.base_url, localpart_of(alice.user_id)) for _ in range(3)]
    doomed = [c.device_id for c in others[:2]]
    response = with_password_uia(alice, "POST", f"{V3}/delete_devices", {"devices": doomed + ["UNKNOWN"]})
    assert response.status == 200, response
    remaining = {d["device_id"] for d in alice.get(f"{V3}/devices").body["devices"]}
    assert remaining == {alice.device_id, others[2].device_id}
    for client in others[:2]:
        assert client.get(f"{V3}/account/whoami").errcode == "M_UNKNOWN_TOKEN"
    assert others[2].get(f"{V3}/account/whoami").status == 200


@pytest.mark.parametrize("method,suffix,raw", [
    ("PUT", "/devices/X", b"nope"),
    ("PUT", "/devices/X", b"{\"display_name\": 5}"),
    ("PUT", "/devices/X", b"{\"display_name\": \"" + b"x" * 300 + b"\"}"),
    ("POST", "/delete_devices", b"{}"),
    ("POST", "/delete_devices", b"{\"devices\": \"X\"}"),
    ("POST", "/delete_devices", b"{\"devices\": [1]}"),
    ("POST", "/delete_devices", b"{\"devices\": [], \"auth\": []}"),
    ("POST", "/delete_devices", b"{\"devices\": [], \"auth\": {\"type\": \"m.login.password\"}}"),
    ("POST", "/delete_devices", b"{\"devices\": [], \"auth\": {\"type\": \"m.login.password\","
                                b" \"identifier\": {\"type\": \"m.id.user\", \"user\": \"x\"}, \"password\": 1}}"),
    ("DELETE", "/devices/X", b"[]"),
])
def test_malformed_device_requests_are_client_errors(server: RunningServer, method: str, suffix: str,
                                                     raw: bytes) -> None:
    alice = register_user(server.base_url)
    response = alice.request(method, V3 + suffix, raw=raw)
    assert 400 <= response.status < 500, response
    assert alice.get(f"{V3}/account/whoami").status == 200


def test_device_endpoints_need_a_token(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    for method, suffix in (("GET", "/devices"), ("GET", "/devices/X"), ("PUT", "/devices/X"),
                           ("DELETE", "/devices/X"), ("POST", "/delete_devices")):
        response = alice.request(method, V3 + suffix, {}, token=False)
        assert (response.status, response.errcode) == (401, "M_MISSING_TOKEN"), (method, suffix)
