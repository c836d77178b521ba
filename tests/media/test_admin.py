"""Synapse's media admin API: quarantine (by ID, room, user), delete (by ID, user, age), purge the cache."""

from __future__ import annotations

import hashlib
import time

import pytest

from tests.support.client import Client, q, register_user
from tests.support.media import download, image_bytes, media_files, new_admin, thumbnail, upload
from tests.support.rooms import V3, create_room, send_message
from tests.support.server import RunningServer

ADMIN = "/_synapse/admin/v1"
BIG = 300_000  # the deletion tests use files this big, and size_gt, so they never touch other tests' files


@pytest.fixture(scope="module")
def admin(server: RunningServer) -> Client:
    return new_admin(server)


@pytest.fixture(scope="module")
def alice(server: RunningServer) -> Client:
    return register_user(server.base_url)


def now_ms() -> int:
    return int(time.time() * 1000)


def info(admin: Client, server_name: str, media_id: str) -> dict:
    response = admin.get(f"{ADMIN}/media/{server_name}/{media_id}")
    assert response.status == 200, response
    return response.body["media_info"]


def readable(client: Client, server_name: str, media_id: str) -> bool:
    status = download(client, server_name, media_id).status_code
    assert status in (200, 404)
    return status == 200


def admin_calls(server_name: str, media_id: str, user_id: str) -> list[tuple[str, str]]:
    return [
        ("GET", f"{ADMIN}/media/{server_name}/{media_id}"),
        ("POST", f"{ADMIN}/media/quarantine/{server_name}/{media_id}"),
        ("POST", f"{ADMIN}/media/unquarantine/{server_name}/{media_id}"),
        ("POST", f"{ADMIN}/room/{q('!room:test.local')}/media/quarantine"),
        ("POST", f"{ADMIN}/quarantine_media/{q('!room:test.local')}"),
        ("POST", f"{ADMIN}/user/{q(user_id)}/media/quarantine"),
        ("DELETE", f"{ADMIN}/media/{server_name}/{media_id}"),
        ("POST", f"{ADMIN}/media/delete?before_ts={now_ms()}"),
        ("POST", f"{ADMIN}/media/{server_name}/delete?before_ts={now_ms()}"),
        ("GET", f"{ADMIN}/users/{q(user_id)}/media"),
        ("DELETE", f"{ADMIN}/users/{q(user_id)}/media"),
        ("POST", f"{ADMIN}/purge_media_cache?before_ts={now_ms()}"),
    ]


def test_only_admins(server: RunningServer, alice: Client) -> None:
    server_name, media_id = upload(alice, b"keep me")
    anonymous = Client(server.base_url)
    for method, path in admin_calls(server_name, media_id, alice.user_id or ""):
        refused = alice.request(method, path)
        assert (refused.status, refused.errcode) == (403, "M_FORBIDDEN"), path
        missing = anonymous.request(method, path)
        assert (missing.status, missing.errcode) == (401, "M_MISSING_TOKEN"), path
    assert readable(alice, server_name, media_id)
    assert info(new_admin(server), server_name, media_id)["quarantined_by"] is None


def test_media_info(admin: Client, alice: Client) -> None:
    data = b"described" * 10
    server_name, media_id = upload(alice, data, "text/plain", "notes.txt")
    described = info(admin, server_name, media_id)
    assert described["media_id"] == media_id and described["user_id"] == alice.user_id
    assert (described["media_type"], described["media_length"], described["upload_name"]) == \
        ("text/plain", len(data), "notes.txt")
    assert described["sha256"] == hashlib.sha256(data).hexdigest()
    assert described["authenticated"] is True and described["quarantined_by"] is None
    assert abs(described["created_ts"] - now_ms()) < 60_000
    for unknown in (f"{ADMIN}/media/{server_name}/NoSuchMediaHere12345678", f"{ADMIN}/media/elsewhere.example/x"):
        missing = admin.get(unknown)
        assert (missing.status, missing.errcode) == (404, "M_NOT_FOUND")


def test_quarantine_by_id_and_release(admin: Client, alice: Client) -> None:
    picture = image_bytes("PNG", (64, 64))
    server_name, media_id = upload(alice, picture, "image/png")
    assert admin.post(f"{ADMIN}/media/quarantine/{server_name}/{media_id}").status == 200
    assert not readable(alice, server_name, media_id)
    assert thumbnail(alice, server_name, media_id, width=32, height=32).status_code == 404
    assert download(alice, server_name, media_id, authenticated=False).status_code == 404
    assert info(admin, server_name, media_id)["quarantined_by"] == admin.user_id
    # The same bytes uploaded again are quarantined on arrival.
    again = upload(register_user(alice.base_url), picture, "image/png")
    assert not readable(alice, *again)
    assert info(admin, *again)["quarantined_by"] == "system"
    assert admin.post(f"{ADMIN}/media/unquarantine/{server_name}/{media_id}").status == 200
    assert readable(alice, server_name, media_id)


def test_quarantine_by_user(server: RunningServer, admin: Client) -> None:
    spammer, bystander = register_user(server.base_url), register_user(server.base_url)
    theirs = [upload(spammer, f"spam {i}".encode()) for i in range(2)]
    mine = upload(bystander, b"innocent")
    response = admin.post(f"{ADMIN}/user/{q(spammer.user_id or '')}/media/quarantine")
    assert (response.status, response.body) == (200, {"num_quarantined": 2})
    assert not any(readable(bystander, *media) for media in theirs)
    assert readable(bystander, *mine)
    unknown = admin.post(f"{ADMIN}/user/{q('@nobody:test.local')}/media/quarantine")
    assert (unknown.status, unknown.errcode) == (404, "M_NOT_FOUND")
    remote = admin.post(f"{ADMIN}/user/{q('@x:elsewhere.example')}/media/quarantine")
    assert remote.status == 400
    bad = admin.post(f"{ADMIN}/user/{q('not-a-user')}/media/quarantine")
    assert (bad.status, bad.errcode) == (400, "M_INVALID_PARAM")


def test_quarantine_by_room(server: RunningServer, admin: Client, alice: Client) -> None:
    room_id = create_room(alice)
    image = upload(alice, b"an image")
    thumb = upload(alice, b"its thumbnail")
    elsewhere = upload(alice, b"posted in another room")
    send_message(alice, room_id, "pic.png", msgtype="m.image", url=f"mxc://{image[0]}/{image[1]}",
                 info={"thumbnail_url": f"mxc://{thumb[0]}/{thumb[1]}"})
    send_message(alice, create_room(alice), "other", msgtype="m.file", url=f"mxc://{elsewhere[0]}/{elsewhere[1]}")
    for path in (f"{ADMIN}/room/{q(room_id)}/media/quarantine", f"{ADMIN}/quarantine_media/{q(room_id)}"):
        response = admin.post(path)
        assert response.status == 200
    assert admin.post(f"{ADMIN}/quarantine_media/{q(room_id)}").body == {"num_quarantined": 0}
    assert not readable(alice, *image) and not readable(alice, *thumb)
    assert readable(alice, *elsewhere)


def test_quarantine_by_room_counts(server: RunningServer, admin: Client, alice: Client) -> None:
    room_id = create_room(alice)
    media = [upload(alice, f"file {i}".encode()) for i in range(3)]
    for server_name, media_id in media:
        send_message(alice, room_id, "f", msgtype="m.file", url=f"mxc://{server_name}/{media_id}")
    response = admin.post(f"{ADMIN}/room/{q(room_id)}/media/quarantine")
    assert (response.status, response.body) == (200, {"num_quarantined": 3})


def test_delete_by_id(server: RunningServer, admin: Client, alice: Client) -> None:
    server_name, media_id = upload(alice, image_bytes("PNG", (100, 100)), "image/png")
    assert thumbnail(alice, server_name, media_id, width=32, height=32, method="crop").status_code == 200
    assert any(media_id[4:] in str(path) for path in media_files(server))
    response = admin.delete(f"{ADMIN}/media/{server_name}/{media_id}")
    assert (response.status, response.body) == (200, {"deleted_media": [media_id], "total": 1})
    assert not any(media_id[4:] in str(path) for path in media_files(server))  # file and thumbnails
    assert not readable(alice, server_name, media_id)
    again = admin.delete(f"{ADMIN}/media/{server_name}/{media_id}")
    assert (again.status, again.errcode) == (404, "M_NOT_FOUND")
    remote = admin.delete(f"{ADMIN}/media/elsewhere.example/{media_id}")
    assert remote.status == 400


def test_delete_by_user(server: RunningServer, admin: Client) -> None:
    leaver, stayer = register_user(server.base_url), register_user(server.base_url)
    theirs = [upload(leaver, f"mine {i}".encode()) for i in range(3)]
    kept = upload(stayer, b"not theirs")
    listed = admin.get(f"{ADMIN}/users/{q(leaver.user_id or '')}/media", params={"limit": 2})
    assert listed.status == 200 and listed.body["total"] == 3 and len(listed.body["media"]) == 2
    assert listed.body["next_token"] == 2
    response = admin.delete(f"{ADMIN}/users/{q(leaver.user_id or '')}/media")
    assert response.status == 200 and response.body["total"] == 3
    assert sorted(response.body["deleted_media"]) == sorted(media_id for _, media_id in theirs)
    assert not any(readable(stayer, *media) for media in theirs)
    assert readable(stayer, *kept)


def test_delete_unused_before_a_time(server: RunningServer, admin: Client, alice: Client) -> None:
    old, avatar, quarantined = (upload(alice, bytes([i]) * BIG) for i in range(3))
    small = upload(alice, b"small and old")
    assert alice.put(f"{V3}/profile/{q(alice.user_id or '')}/avatar_url",
                     {"avatar_url": f"mxc://{avatar[0]}/{avatar[1]}"}).status == 200
    assert admin.post(f"{ADMIN}/media/quarantine/{quarantined[0]}/{quarantined[1]}").status == 200
    cutoff = now_ms() + 1000
    time.sleep(1.1)
    fresh = upload(alice, b"\x09" * BIG)
    response = admin.post(f"{ADMIN}/media/delete", params={"before_ts": cutoff, "size_gt": BIG - 1})
    assert (response.status, response.body) == (200, {"deleted_media": [old[1]], "total": 1})
    assert not readable(alice, *old)
    assert readable(alice, *avatar) and readable(alice, *small) and readable(alice, *fresh)
    assert info(admin, *quarantined)["quarantined_by"] == admin.user_id  # kept, as evidence
    without_profiles = admin.post(f"{ADMIN}/media/{server.server_name}/delete",
                                  params={"before_ts": cutoff, "size_gt": BIG - 1, "keep_profiles": "false"})
    assert without_profiles.body == {"deleted_media": [avatar[1]], "total": 1}


@pytest.mark.parametrize(("params", "errcode"), [
    ({}, "M_MISSING_PARAM"), ({"before_ts": "yesterday"}, "M_INVALID_PARAM"), ({"before_ts": -1}, "M_INVALID_PARAM"),
    ({"before_ts": 1_700_000_000}, "M_INVALID_PARAM"),  # seconds, not milliseconds
    ({"before_ts": 1_700_000_000_000, "size_gt": -3}, "M_INVALID_PARAM"),
    ({"before_ts": 1_700_000_000_000, "keep_profiles": "perhaps"}, "M_INVALID_PARAM"),
])
def test_bad_delete_and_purge_parameters(admin: Client, params: dict, errcode: str) -> None:
    for path in (f"{ADMIN}/media/delete", f"{ADMIN}/purge_media_cache"):
        if path.endswith("cache") and set(params) - {"before_ts"}:
            continue
        response = admin.post(path, params=params)
        assert (response.status, response.errcode) == (400, errcode), path


def test_purge_remote_cache(admin: Client, alice: Client) -> None:
    local = upload(alice, b"local media is never purged as cache")
    response = admin.post(f"{ADMIN}/purge_media_cache", params={"before_ts": now_ms() + 60_000})
    assert (response.status, response.body) == (200, {"deleted": 0})
    assert readable(alice, *local)


def test_last_access_is_recorded(server: RunningServer, admin: Client, alice: Client) -> None:
    server_name, media_id = upload(alice, b"read me")
    assert info(admin, server_name, media_id)["last_access_ts"] is None
    before = now_ms()
    assert readable(alice, server_name, media_id)
    server.restart()  # access times are written in batches, and at shutdown
    accessed = info(admin, server_name, media_id)["last_access_ts"]
    assert accessed is not None and before - 1000 <= accessed <= now_ms()
