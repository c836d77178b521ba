"""Shadow-banning over HTTP, on both engines: the flag, and its effect as Synapse has it
(sends, state, invites, invites at room creation and typing answer 200 but reach nobody)."""

from __future__ import annotations

import pytest

from tests.support.admin import ADMIN_V1, ADMIN_V2, new_admin, refused_to_others
from tests.support.client import Client, q, register_user
from tests.support.rooms import V3, create_room, get_state, join, messages, put_state, send_message
from tests.support.server import RunningServer


@pytest.fixture(scope="module")
def admin(server: RunningServer) -> Client:
    return new_admin(server)


def bodies(client: Client, room_id: str) -> list[str]:
    chunk = messages(client, room_id, dir="b", limit=50)["chunk"]
    return [e["content"].get("body") for e in chunk if e["type"] == "m.room.message"]


def test_shadow_banned_sends_reach_nobody(server: RunningServer, admin: Client) -> None:
    victim, spammer, bystander = (register_user(server.base_url) for _ in range(3))
    room_id = create_room(victim, preset="public_chat", name="Quiet")
    join(spammer, room_id)
    assert send_message(spammer, room_id, "before the ban") is not None

    banned = admin.post(f"{ADMIN_V1}/users/{q(spammer.user_id)}/shadow_ban", {})
    assert (banned.status, banned.body) == (200, {}), banned
    assert admin.get(f"{ADMIN_V2}/users/{q(spammer.user_id)}").body["shadow_banned"] is True
    listed = admin.get(f"{ADMIN_V2}/users", params={"user_id": spammer.user_id}).body["users"]
    assert [u["shadow_banned"] for u in listed] == [True]

    # A message: 200 with an event ID, the same one on a retry, and nobody can see it.
    first = spammer.put(f"{V3}/rooms/{q(room_id)}/send/m.room.message/spam1", {"msgtype": "m.text", "body": "spam"})
    assert first.status == 200 and first.body["event_id"].startswith("$"), first
    again = spammer.put(f"{V3}/rooms/{q(room_id)}/send/m.room.message/spam1", {"msgtype": "m.text", "body": "spam"})
    assert again.body["event_id"] == first.body["event_id"]
    assert victim.get(f"{V3}/rooms/{q(room_id)}/event/{q(first.body['event_id'])}").status == 404
    assert bodies(victim, room_id) == ["before the ban"]
    # State: 200, the room's state unchanged.
    topic = put_state(spammer, room_id, "m.room.topic", {"topic": "buy things"})
    assert topic.status == 200 and topic.body["event_id"].startswith("$"), topic
    assert get_state(victim, room_id, "m.room.topic").status == 404
    # An invite: 200, and the invitee is not invited.
    invited = spammer.post(f"{V3}/rooms/{q(room_id)}/invite", {"user_id": bystander.user_id})
    assert (invited.status, invited.body) == (200, {}), invited
    assert get_state(victim, room_id, "m.room.member", bystander.user_id).status == 404
    # A new room with invites: the room exists, without them.
    own = spammer.post(f"{V3}/createRoom", {"invite": [bystander.user_id], "name": "Trap"})
    assert own.status == 200, own
    assert get_state(spammer, own.body["room_id"], "m.room.member", bystander.user_id).status == 404
    assert get_state(spammer, own.body["room_id"], "m.room.name").body == {"name": "Trap"}
    # Typing: accepted, shown to nobody.
    typing = spammer.put(f"{V3}/rooms/{q(room_id)}/typing/{q(spammer.user_id)}", {"typing": True, "timeout": 30000})
    assert typing.status == 200, typing
    ephemeral = victim.get(f"{V3}/sync").body["rooms"]["join"][room_id].get("ephemeral", {}).get("events", [])
    assert not [e for e in ephemeral if e["type"] == "m.typing" and e["content"]["user_ids"]]

    lifted = admin.delete(f"{ADMIN_V1}/users/{q(spammer.user_id)}/shadow_ban")
    assert (lifted.status, lifted.body) == (200, {}), lifted
    assert admin.get(f"{ADMIN_V2}/users/{q(spammer.user_id)}").body["shadow_banned"] is False
    send_message(spammer, room_id, "after the ban")
    assert bodies(victim, room_id) == ["after the ban", "before the ban"]


def test_refusals_and_bad_input(server: RunningServer, admin: Client) -> None:
    user = register_user(server.base_url)
    path = f"{ADMIN_V1}/users/{q(user.user_id)}/shadow_ban"
    refused_to_others(server, "POST", path, {})
    refused_to_others(server, "DELETE", path)
    assert admin.get(f"{ADMIN_V2}/users/{q(user.user_id)}").body["shadow_banned"] is False
    unknown = admin.post(f"{ADMIN_V1}/users/{q('@nobody_here:' + server.server_name)}/shadow_ban", {})
    assert (unknown.status, unknown.errcode) == (404, "M_NOT_FOUND")
    for bad in ("not-a-user", "@someone:elsewhere.example"):
        response = admin.post(f"{ADMIN_V1}/users/{q(bad)}/shadow_ban", {})
        assert (response.status, response.errcode) == (400, "M_INVALID_PARAM"), (bad, response)
    myself = admin.post(f"{ADMIN_V1}/users/{q(admin.user_id)}/shadow_ban", {})
    assert (myself.status, myself.errcode) == (400, "M_INVALID_PARAM")
