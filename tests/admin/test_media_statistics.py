"""GET /_synapse/admin/v1/statistics/users/media: files and bytes per local uploader."""

from __future__ import annotations

from tests.support.admin import ADMIN_V1, new_admin, refused_to_others
from tests.support.client import random_localpart, register_user
from tests.support.media import upload
from tests.support.server import RunningServer

STATS = f"{ADMIN_V1}/statistics/users/media"


def test_media_per_user(server: RunningServer) -> None:
    admin = new_admin(server)
    tag = random_localpart("uploader")
    big = register_user(server.base_url, f"{tag}a")
    small = register_user(server.base_url, f"{tag}b")
    for size in (1000, 2000):
        upload(big, b"x" * size)
    upload(small, b"y" * 10)
    stats = admin.get(STATS, params={"search_term": tag})
    assert stats.status == 200, stats
    assert stats.body["total"] == 2
    assert stats.body["users"] == [
        {"user_id": big.user_id, "displayname": f"{tag}a", "media_count": 2, "media_length": 3000},
        {"user_id": small.user_id, "displayname": f"{tag}b", "media_count": 1, "media_length": 10},
    ]
    by_size = admin.get(STATS, params={"search_term": tag, "order_by": "media_length", "limit": 1}).body
    assert [u["user_id"] for u in by_size["users"]] == [small.user_id] and by_size["next_token"] == 1
    assert admin.get(STATS, params={"search_term": tag, "until_ts": 1}).body == {"users": [], "total": 0}
    for bad in ({"order_by": "size"}, {"dir": "z"}, {"from_ts": "-1"}, {"from_ts": "5", "until_ts": "1"}):
        response = admin.get(STATS, params=bad)
        assert (response.status, response.errcode) == (400, "M_INVALID_PARAM"), bad
    refused_to_others(server, "GET", STATS)
