"""Synapse's room admin API over HTTP, on both engines: list, details, members, state,
block, and deletion with purge (nothing about the room is left in any table)."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.support.admin import ADMIN_V1, ADMIN_V2, connect, new_admin, refused_to_others, rows_left
from tests.support.client import Client, q, random_localpart, register_user
from tests.support.rooms import create_room, invite, join, messages, send_message
from tests.support.server import RunningServer

V3 = "/_matrix/client/v3"
#: The issue's 10,000 by default; fewer for a quick local run.
DELETION_EVENTS = int(os.environ.get("VIGNETTE_ROOM_DELETION_EVENTS", "10000"))


@pytest.fixture(scope="module")
def admin(server: RunningServer) -> Client:
    return new_admin(server)


def test_list_details_members_and_state(server: RunningServer, admin: Client) -> None:
    owner = register_user(server.base_url)
    guest = register_user(server.base_url)
    tag = random_localpart("garden")
    room_id = create_room(owner, name=f"The {tag}", topic="Plants", room_alias_name=tag, preset="public_chat")
    join(guest, room_id)
    listed = admin.get(f"{ADMIN_V1}/rooms", params={"search_term": tag})
    assert listed.status == 200, listed
    assert listed.body["total_rooms"] == 1 and listed.body["offset"] == 0
    entry = listed.body["rooms"][0]
    assert entry["room_id"] == room_id and entry["name"] == f"The {tag}"
    assert entry["canonical_alias"] == f"#{tag}:{server.server_name}"
    assert entry["joined_members"] == 2 and entry["joined_local_members"] == 2
    assert entry["creator"] == owner.user_id and entry["join_rules"] == "public"
    assert entry["federatable"] is True and entry["state_events"] >= 6
    for key in ("version", "encryption", "public", "guest_access", "history_visibility", "room_type"):
        assert key in entry
    details = admin.get(f"{ADMIN_V1}/rooms/{q(room_id)}")
    assert details.status == 200 and details.body["topic"] == "Plants"
    assert details.body["joined_members"] == 2
    members = admin.get(f"{ADMIN_V1}/rooms/{q(room_id)}/members").body
    assert members == {"members": sorted([owner.user_id, guest.user_id]), "total": 2}
    state = admin.get(f"{ADMIN_V1}/rooms/{q(room_id)}/state").body["state"]
    assert {(e["type"], e["state_key"]) for e in state} >= {("m.room.create", ""), ("m.room.topic", ""),
                                                              ("m.room.member", guest.user_id)}
    assert all("event_id" in e and "content" in e for e in state)
    extremities = admin.get(f"{ADMIN_V1}/rooms/{q(room_id)}/forward_extremities").body
    assert extremities["count"] == 1 and extremities["results"][0]["event_id"].startswith("$")


def test_ordering_and_paging(server: RunningServer, admin: Client) -> None:
    owner = register_user(server.base_url)
    tag = random_localpart("order")
    small = create_room(owner, name=f"{tag} b")
    big = create_room(owner, name=f"{tag} a")
    for _ in range(2):
        helper = register_user(server.base_url)
        invite(owner, big, helper.user_id)
        join(helper, big)
    by_name = admin.get(f"{ADMIN_V1}/rooms", params={"search_term": tag, "order_by": "name"}).body["rooms"]
    assert [r["room_id"] for r in by_name] == [big, small]
    by_size = admin.get(f"{ADMIN_V1}/rooms", params={"search_term": tag, "order_by": "joined_members",
                                                     "dir": "b"}).body["rooms"]
    assert [r["room_id"] for r in by_size] == [small, big]
    first = admin.get(f"{ADMIN_V1}/rooms", params={"search_term": tag, "limit": 1}).body
    assert len(first["rooms"]) == 1 and first["next_batch"] == 1 and first["total_rooms"] == 2
    second = admin.get(f"{ADMIN_V1}/rooms", params={"search_term": tag, "from": 1}).body
    assert [r["room_id"] for r in second["rooms"]] == [small] and second["prev_batch"] == 0


def test_bad_input(server: RunningServer, admin: Client) -> None:
    for params in ({"order_by": "secret"}, {"dir": "up"}, {"from": "-3"}, {"limit": "x"}):
        response = admin.get(f"{ADMIN_V1}/rooms", params=params)
        assert (response.status, response.errcode) == (400, "M_INVALID_PARAM"), params
    unknown = admin.get(f"{ADMIN_V1}/rooms/{q('!nothere:' + server.server_name)}")
    assert (unknown.status, unknown.errcode) == (404, "M_NOT_FOUND")
    assert admin.get(f"{ADMIN_V1}/rooms/not-a-room").errcode == "M_INVALID_PARAM"
    delete = admin.delete(f"{ADMIN_V2}/rooms/{q('!nothere:' + server.server_name)}", {})
    assert (delete.status, delete.errcode) == (404, "M_NOT_FOUND")
    wrong = admin.delete(f"{ADMIN_V2}/rooms/{q('!nothere:' + server.server_name)}", {"purge": "yes"})
    assert (wrong.status, wrong.errcode) == (400, "M_BAD_JSON")
    block = admin.put(f"{ADMIN_V1}/rooms/{q('!x:' + server.server_name)}/block", {})
    assert (block.status, block.errcode) == (400, "M_MISSING_PARAM")
    status = admin.get(f"{ADMIN_V2}/rooms/delete_status/nothing")
    assert (status.status, status.errcode) == (404, "M_NOT_FOUND")


def room_event_ids(server: RunningServer, room_id: str) -> set[str]:
    database = server.config["database"]
    conn = connect(database)
    try:
        cursor = conn.cursor()
        mark = "?" if database["name"] == "sqlite3" else "%s"
        cursor.execute(f"SELECT event_id FROM events WHERE room_id = {mark}", (room_id,))
        return {row[0] for row in cursor.fetchall()}
    finally:
        conn.close()


def fill_room(server: RunningServer, room_id: str, senders: list[Client], count: int) -> None:
    """``count`` messages from several senders at once (the server orders them)."""
    def send(index: int) -> str:
        return send_message(senders[index % len(senders)], room_id, f"message {index}", txn_id=f"fill{index}")

    with ThreadPoolExecutor(max_workers=len(senders)) as pool:
        assert len(set(pool.map(send, range(count)))) == count


def wait_for_deletion(admin: Client, delete_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 600
    while True:
        status = admin.get(f"{ADMIN_V2}/rooms/delete_status/{delete_id}")
        assert status.status == 200, status
        if status.body["status"] in ("complete", "failed") or time.monotonic() > deadline:
            return status.body
        time.sleep(0.2)


def test_delete_with_purge_and_block(server: RunningServer, admin: Client) -> None:
    owner = register_user(server.base_url)
    members = [register_user(server.base_url) for _ in range(3)]
    invited = register_user(server.base_url)
    alias = random_localpart("doomed")
    room_id = create_room(owner, name="Doomed", room_alias_name=alias, preset="public_chat")
    for member in members:
        join(member, room_id)
    invite(owner, room_id, invited.user_id)
    fill_room(server, room_id, [owner, *members], DELETION_EVENTS)
    event_ids = room_event_ids(server, room_id)
    assert len(event_ids) >= DELETION_EVENTS
    assert rows_left(server, room_id, event_ids)  # the check below can see rows

    started = admin.delete(f"{ADMIN_V2}/rooms/{q(room_id)}", {"block": True, "purge": True})
    assert started.status == 200 and set(started.body) == {"delete_id"}, started
    status = wait_for_deletion(admin, started.body["delete_id"])
    assert status["status"] == "complete", status
    shutdown = status["shutdown_room"]
    assert sorted(shutdown["kicked_users"]) == sorted([owner.user_id, invited.user_id,
                                                      *(m.user_id for m in members)])
    assert shutdown["failed_to_kick_users"] == [] and shutdown["local_aliases"] == [f"#{alias}:{server.server_name}"]
    assert status["progress"]["done"] == status["progress"]["total"] >= DELETION_EVENTS
    by_room = admin.get(f"{ADMIN_V2}/rooms/{q(room_id)}/delete_status").body["results"]
    assert [r["delete_id"] for r in by_room] == [started.body["delete_id"]]

    # Every table: nothing names the room or any of its events, but the block.
    assert rows_left(server, room_id, event_ids) == {"blocked_rooms": 1}
    jobs = admin.get(f"{ADMIN_V1}/jobs").body["jobs"]
    job = next(j for j in jobs if j["kind"] == "room_deletion" and room_id in j["description"])
    purged = len(event_ids) + len(shutdown["kicked_users"])  # and their leave events
    assert job["status"] == "finished" and job["percent"] == 100.0 and job["events_deleted"] == purged
    assert f"{purged}/{purged} (100.0%)" in server.output()

    assert admin.get(f"{ADMIN_V1}/rooms/{q(room_id)}").status == 404
    assert admin.get(f"{ADMIN_V1}/rooms/{q(room_id)}/block").body == {"block": True, "user_id": admin.user_id}
    again = members[0].post(f"{V3}/join/{q(room_id)}", {})
    assert (again.status, again.errcode) == (403, "M_FORBIDDEN")
    assert members[0].get(f"{V3}/directory/room/{q('#' + alias + ':' + server.server_name)}").status == 404
    assert room_id not in members[0].get(f"{V3}/joined_rooms").body["joined_rooms"]


def test_delete_v1_without_purge_and_unblock(server: RunningServer, admin: Client) -> None:
    owner = register_user(server.base_url)
    room_id = create_room(owner)
    send_message(owner, room_id)
    done = admin.delete(f"{ADMIN_V1}/rooms/{q(room_id)}", {"purge": False})
    assert done.status == 200, done
    assert done.body == {"kicked_users": [owner.user_id], "failed_to_kick_users": [], "local_aliases": [],
                         "new_room_id": None}
    assert admin.get(f"{ADMIN_V1}/rooms/{q(room_id)}").body["joined_members"] == 0  # kept without purge
    assert admin.put(f"{ADMIN_V1}/rooms/{q(room_id)}/block", {"block": True}).body == {"block": True}
    assert owner.post(f"{V3}/join/{q(room_id)}", {}).status == 403
    assert admin.put(f"{ADMIN_V1}/rooms/{q(room_id)}/block", {"block": False}).body == {"block": False}
    assert admin.get(f"{ADMIN_V1}/rooms/{q(room_id)}/block").body == {"block": False}


def test_delete_moves_members_to_a_new_room(server: RunningServer, admin: Client) -> None:
    owner, member, moderator = (register_user(server.base_url) for _ in range(3))
    alias = random_localpart("moving")
    room_id = create_room(owner, name="Old", room_alias_name=alias, preset="public_chat")
    join(member, room_id)
    send_message(member, room_id, "something bad")
    started = admin.delete(f"{ADMIN_V2}/rooms/{q(room_id)}", {
        "new_room_user_id": moderator.user_id, "room_name": "Moved here", "message": "This room was closed."})
    assert started.status == 200, started
    status = wait_for_deletion(admin, started.body["delete_id"])
    assert status["status"] == "complete", status
    shutdown = status["shutdown_room"]
    new_room = shutdown["new_room_id"]
    assert new_room is not None and new_room != room_id
    assert sorted(shutdown["kicked_users"]) == sorted([owner.user_id, member.user_id])
    assert shutdown["local_aliases"] == [f"#{alias}:{server.server_name}"]
    # The members are in the new room, the old one is gone, the alias leads to the new room.
    for user in (owner, member):
        assert user.get(f"{V3}/joined_rooms").body["joined_rooms"] == [new_room]
    assert admin.get(f"{ADMIN_V1}/rooms/{q(room_id)}").status == 404
    resolved = member.get(f"{V3}/directory/room/{q('#' + alias + ':' + server.server_name)}")
    assert resolved.body["room_id"] == new_room
    details = admin.get(f"{ADMIN_V1}/rooms/{q(new_room)}").body
    assert details["name"] == "Moved here" and details["creator"] == moderator.user_id
    assert details["joined_members"] == 3
    chunk = messages(member, new_room, dir="b", limit=20)["chunk"]
    notice = [e for e in chunk if e["type"] == "m.room.message"]
    assert [(e["sender"], e["content"]["body"]) for e in notice] == [(moderator.user_id, "This room was closed.")]
    # Only the new room's creator may speak there.
    refused = member.put(f"{V3}/rooms/{q(new_room)}/send/m.room.message/t1", {"msgtype": "m.text", "body": "hi"})
    assert (refused.status, refused.errcode) == (403, "M_FORBIDDEN"), refused


def test_delete_with_a_bad_new_room_user(server: RunningServer, admin: Client) -> None:
    owner = register_user(server.base_url)
    room_id = create_room(owner)
    for bad in ("not a user", "@someone:elsewhere.example", f"@nobody_at_all:{server.server_name}", 7):
        response = admin.delete(f"{ADMIN_V2}/rooms/{q(room_id)}", {"new_room_user_id": bad})
        assert response.status == 400, (bad, response)
    assert admin.get(f"{ADMIN_V1}/rooms/{q(room_id)}").status == 200  # nothing was done


ENDPOINTS = [
    ("DELETE", f"{ADMIN_V1}/rooms/!r:test.local/forward_extremities"),
    ("POST", f"{ADMIN_V1}/rooms/!r:test.local/make_room_admin"),
    ("POST", f"{ADMIN_V1}/purge_history/!r:test.local"), ("GET", f"{ADMIN_V1}/purge_history_status/abc"),
    ("GET", f"{ADMIN_V1}/rooms"), ("GET", f"{ADMIN_V1}/rooms/!r:test.local"),
    ("GET", f"{ADMIN_V1}/rooms/!r:test.local/members"), ("GET", f"{ADMIN_V1}/rooms/!r:test.local/state"),
    ("GET", f"{ADMIN_V1}/rooms/!r:test.local/forward_extremities"), ("GET", f"{ADMIN_V1}/rooms/!r:test.local/block"),
    ("PUT", f"{ADMIN_V1}/rooms/!r:test.local/block"), ("DELETE", f"{ADMIN_V1}/rooms/!r:test.local"),
    ("DELETE", f"{ADMIN_V2}/rooms/!r:test.local"), ("GET", f"{ADMIN_V2}/rooms/!r:test.local/delete_status"),
    ("GET", f"{ADMIN_V2}/rooms/delete_status/abc"),
]


def test_non_admins_are_refused_everywhere(server: RunningServer) -> None:
    for method, path in ENDPOINTS:
        refused_to_others(server, method, path, {} if method in ("PUT", "DELETE", "POST") else None)


def wait_for_purge(admin: Client, purge_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 300
    while True:
        status = admin.get(f"{ADMIN_V1}/purge_history_status/{purge_id}")
        assert status.status == 200, status
        if status.body["status"] != "active" or time.monotonic() > deadline:
            return status.body
        time.sleep(0.1)


def test_purge_history(server: RunningServer, admin: Client) -> None:
    owner = register_user(server.base_url)
    room_id = create_room(owner)
    old = [send_message(owner, room_id, f"old {i}") for i in range(5)]
    time.sleep(0.01)  # the cut-off compares origin_server_ts: the mark must be later than "old"
    mark = send_message(owner, room_id, "mark")
    newer = send_message(owner, room_id, "newer")
    # Local events are kept unless delete_local_events is set (Synapse's default).
    kept = admin.post(f"{ADMIN_V1}/purge_history/{q(room_id)}", {"purge_up_to_event_id": mark})
    assert kept.status == 200 and set(kept.body) == {"purge_id"}, kept
    assert wait_for_purge(admin, kept.body["purge_id"])["status"] == "complete"
    assert owner.get(f"{V3}/rooms/{q(room_id)}/event/{q(old[0])}").status == 200
    purged = admin.post(f"{ADMIN_V1}/purge_history/{q(room_id)}/{q(mark)}", {"delete_local_events": True})
    status = wait_for_purge(admin, purged.body["purge_id"])
    assert status["status"] == "complete" and status["events_deleted"] == len(old)
    for event_id in old:
        assert owner.get(f"{V3}/rooms/{q(room_id)}/event/{q(event_id)}").status == 404
    for event_id in (mark, newer):
        assert owner.get(f"{V3}/rooms/{q(room_id)}/event/{q(event_id)}").status == 200
    assert room_event_ids(server, room_id) >= {mark, newer}
    assert not room_event_ids(server, room_id) & set(old)
    send_message(owner, room_id, "the room still works")
    jobs = admin.get(f"{ADMIN_V1}/jobs").body["jobs"]
    assert any(j["kind"] == "history_purge" and j["done"] == len(old) for j in jobs)
    refused_to_others(server, "POST", f"{ADMIN_V1}/purge_history/{q(room_id)}", {})
    refused_to_others(server, "GET", f"{ADMIN_V1}/purge_history_status/{purged.body['purge_id']}")
    neither = admin.post(f"{ADMIN_V1}/purge_history/{q(room_id)}", {})
    assert (neither.status, neither.errcode) == (400, "M_INVALID_PARAM")
    elsewhere = admin.post(f"{ADMIN_V1}/purge_history/{q(room_id)}", {"purge_up_to_event_id": "$nope"})
    assert (elsewhere.status, elsewhere.errcode) == (404, "M_NOT_FOUND")


@pytest.mark.parametrize("room_version", ["10", "12"])
def test_make_room_admin(server: RunningServer, admin: Client, room_version: str) -> None:
    owner = register_user(server.base_url)
    target = register_user(server.base_url)
    room_id = create_room(owner, preset="private_chat", room_version=room_version)
    done = admin.post(f"{ADMIN_V1}/rooms/{q(room_id)}/make_room_admin", {"user_id": target.user_id})
    assert done.status == 200 and done.body == {}, done
    levels = owner.get(f"{V3}/rooms/{q(room_id)}/state/m.room.power_levels/").body
    assert levels["users"][target.user_id] == 100
    join(target, room_id)  # it was invited
    assert target.put(f"{V3}/rooms/{q(room_id)}/state/m.room.topic/", {"topic": "mine now"}).status == 200
    missing = admin.post(f"{ADMIN_V1}/rooms/{q(room_id)}/make_room_admin", {})
    assert (missing.status, missing.errcode) == (400, "M_MISSING_PARAM")
    unknown = admin.post(f"{ADMIN_V1}/rooms/{q('!nope:' + server.server_name)}/make_room_admin",
                         {"user_id": target.user_id})
    assert (unknown.status, unknown.errcode) == (404, "M_NOT_FOUND")
    refused_to_others(server, "POST", f"{ADMIN_V1}/rooms/{q(room_id)}/make_room_admin", {"user_id": target.user_id})
