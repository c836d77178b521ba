"""Account locking and suspension: the /v1/admin/lock and /v1/admin/suspend APIs and their
enforcement (M_USER_LOCKED, M_USER_SUSPENDED), over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.apps import new_admin
from tests.support.client import Client, q
from tests.support.rooms import V1, V3, create_room, join, new_user, send_message
from tests.support.server import RunningServer


@pytest.fixture(scope="module")
def admin(server: RunningServer) -> Client:
    return new_admin(server)


def moderate(admin: Client, action: str, user: str, value: Any = None, expect: int = 200) -> Any:
    path = f"{V1}/admin/{action}/{q(user)}"
    flag = "locked" if action == "lock" else "suspended"
    response = admin.get(path) if value is None else admin.put(path, {flag: value})
    assert response.status == expect, response
    return response.body


def test_lock_blocks_everything_but_logout(server: RunningServer, admin: Client) -> None:
    victim = new_user(server.base_url)
    assert moderate(admin, "lock", victim.user_id or "") == {"locked": False}
    assert moderate(admin, "lock", victim.user_id or "", True) == {"locked": True}
    assert moderate(admin, "lock", victim.user_id or "") == {"locked": True}
    for response in (victim.get(f"{V3}/account/whoami"), victim.post(f"{V3}/createRoom", {}),
                     victim.get(f"{V3}/sync")):
        assert (response.status, response.errcode) == (401, "M_USER_LOCKED"), response
        assert response.body["soft_logout"] is True
    assert moderate(admin, "lock", victim.user_id or "", False) == {"locked": False}
    assert victim.get(f"{V3}/account/whoami").status == 200
    moderate(admin, "lock", victim.user_id or "", True)
    server.restart()
    still = victim.get(f"{V3}/account/whoami")
    assert (still.status, still.errcode) == (401, "M_USER_LOCKED")
    assert victim.post(f"{V3}/logout", {}).status == 200
    gone = victim.get(f"{V3}/account/whoami")
    assert (gone.status, gone.errcode) == (401, "M_UNKNOWN_TOKEN")


def test_suspension_allows_reading_and_leaving_not_acting(server: RunningServer, admin: Client) -> None:
    owner, suspended = new_user(server.base_url), new_user(server.base_url)
    room = create_room(owner, preset="public_chat")
    other = create_room(owner, preset="public_chat")
    join(suspended, room)
    mine = send_message(suspended, room, "before suspension")
    send_message(owner, room, "hello")
    assert moderate(admin, "suspend", suspended.user_id or "", True) == {"suspended": True}
    refused = [
        suspended.put(f"{V3}/rooms/{q(room)}/send/m.room.message/s1", {"msgtype": "m.text", "body": "x"}),
        suspended.put(f"{V3}/rooms/{q(room)}/state/m.room.topic/", {"topic": "x"}),
        suspended.post(f"{V3}/createRoom", {}),
        suspended.post(f"{V3}/join/{q(other)}", {}),
        suspended.post(f"{V3}/rooms/{q(room)}/invite", {"user_id": owner.user_id}),
        suspended.put(f"{V3}/profile/{q(suspended.user_id or '')}/displayname", {"displayname": "x"}),
        suspended.request("POST", "/_matrix/media/v3/upload", raw=b"data"),
    ]
    for response in refused:
        assert (response.status, response.errcode) == (403, "M_USER_SUSPENDED"), response
    assert suspended.get(f"{V3}/sync").status == 200
    assert suspended.get(f"{V3}/rooms/{q(room)}/messages", params={"dir": "b"}).status == 200
    redaction = suspended.put(f"{V3}/rooms/{q(room)}/redact/{q(mine)}/r1", {})
    assert redaction.status == 200, redaction
    assert suspended.post(f"{V3}/rooms/{q(room)}/leave", {}).status == 200
    moderate(admin, "suspend", suspended.user_id or "", False)
    assert suspended.post(f"{V3}/join/{q(other)}", {}).status == 200


def test_only_admins_and_not_on_admins_or_self(server: RunningServer, admin: Client) -> None:
    user, other = new_user(server.base_url), new_user(server.base_url)
    for action in ("lock", "suspend"):
        flag = "locked" if action == "lock" else "suspended"
        not_admin = user.put(f"{V1}/admin/{action}/{q(other.user_id or '')}", {flag: True})
        assert (not_admin.status, not_admin.errcode) == (403, "M_FORBIDDEN")
        assert user.get(f"{V1}/admin/{action}/{q(other.user_id or '')}").status == 403
        assert moderate(admin, action, admin.user_id or "", True, 403)["errcode"] == "M_FORBIDDEN"
        assert moderate(admin, action, new_admin(server).user_id or "", True, 403)["errcode"] == "M_FORBIDDEN"
        assert moderate(admin, action, "@someone:elsewhere.example", True, 400)["errcode"] == "M_INVALID_PARAM"
        assert moderate(admin, action, "@nobody-here:test.local", None, 404)["errcode"] == "M_NOT_FOUND"
        for body in ({}, {flag: "yes"}, []):
            bad = admin.put(f"{V1}/admin/{action}/{q(other.user_id or '')}", body)
            assert bad.status == 400 and bad.errcode in ("M_MISSING_PARAM", "M_BAD_JSON", "M_NOT_JSON"), bad
