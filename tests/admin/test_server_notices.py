"""Server notices over HTTP: the notices account, its room per user, refusals."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.accounts import custom_server
from tests.support.admin import ADMIN_V1, new_admin, refused_to_others
from tests.support.client import q, register_user
from tests.support.databases import ENGINES
from tests.support.rooms import join, send_message
from tests.support.server import RunningServer

V3 = "/_matrix/client/v3"
NOTICE = f"{ADMIN_V1}/send_server_notice"
NOTICES = {"system_mxid_localpart": "notices", "system_mxid_display_name": "Server Notices",
           "room_name": "Notices for you", "room_topic": "From the admins"}


@pytest.fixture(scope="module", params=ENGINES)
def notices_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    directory = tmp_path_factory.mktemp(f"hs-notices-{request.param}")
    with custom_server(directory, request.param, server_notices=NOTICES) as running:
        yield running


def test_notices_arrive_in_one_room(notices_server: RunningServer) -> None:
    admin = new_admin(notices_server)
    user = register_user(notices_server.base_url)
    sent = admin.post(NOTICE, {"user_id": user.user_id, "content": {"msgtype": "m.text", "body": "Maintenance at 10"}})
    assert sent.status == 200 and sent.body["event_id"].startswith("$"), sent
    invites = user.get(f"{V3}/sync").body["rooms"]["invite"]
    assert len(invites) == 1
    room_id = next(iter(invites))
    join(user, room_id)
    state = {(e["type"], e["state_key"]): e["content"] for e in
             user.get(f"{V3}/rooms/{q(room_id)}/state").body}
    sender = f"@notices:{notices_server.server_name}"
    assert state[("m.room.name", "")]["name"] == "Notices for you"
    assert state[("m.room.topic", "")]["topic"] == "From the admins"
    assert state[("m.room.member", sender)]["displayname"] == "Server Notices"
    tags = user.get(f"{V3}/user/{q(user.user_id)}/rooms/{q(room_id)}/tags").body
    assert "m.server_notice" in tags["tags"]
    again = admin.put(f"{NOTICE}/txn1", {"user_id": user.user_id, "content": {"msgtype": "m.text", "body": "Done"}})
    repeat = admin.put(f"{NOTICE}/txn1", {"user_id": user.user_id, "content": {"msgtype": "m.text", "body": "Done"}})
    assert again.status == 200 and repeat.body["event_id"] == again.body["event_id"]
    bodies = [e["content"].get("body") for e in user.get(f"{V3}/rooms/{q(room_id)}/messages",
                                                       params={"dir": "b"}).body["chunk"]
              if e["type"] == "m.room.message"]
    assert bodies == ["Done", "Maintenance at 10"]
    reply = user.put(f"{V3}/rooms/{q(room_id)}/send/m.room.message/r1", {"msgtype": "m.text", "body": "hi"})
    assert (reply.status, reply.errcode) == (403, "M_FORBIDDEN")


def test_bad_notices(notices_server: RunningServer) -> None:
    admin = new_admin(notices_server)
    user = register_user(notices_server.base_url)
    for body, errcode in (({"content": {}}, "M_MISSING_PARAM"), ({"user_id": user.user_id}, "M_MISSING_PARAM"),
                          ({"user_id": user.user_id, "content": "text"}, "M_BAD_JSON"),
                          ({"user_id": "@x:elsewhere.example", "content": {}}, "M_INVALID_PARAM")):
        response = admin.post(NOTICE, body)
        assert (response.status, response.errcode) == (400, errcode), body
    unknown = admin.post(NOTICE, {"user_id": f"@nobody:{notices_server.server_name}", "content": {}})
    assert (unknown.status, unknown.errcode) == (404, "M_NOT_FOUND")
    refused_to_others(notices_server, "POST", NOTICE, {"user_id": user.user_id, "content": {}})
    refused_to_others(notices_server, "PUT", f"{NOTICE}/t", {"user_id": user.user_id, "content": {}})


def test_off_without_the_setting(server: RunningServer) -> None:
    admin = new_admin(server)
    user = register_user(server.base_url)
    send_message(user, user.post(f"{V3}/createRoom", {}).body["room_id"])
    off = admin.post(NOTICE, {"user_id": user.user_id, "content": {"body": "x"}})
    assert (off.status, off.errcode) == (400, "M_UNKNOWN")
