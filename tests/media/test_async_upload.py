"""Asynchronous uploads: POST /create, then PUT /upload/{serverName}/{mediaId}, then download."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.support.client import Client, register_user
from tests.support.media import (
    CLIENT_MEDIA,
    LEGACY_MEDIA,
    download,
    media_files,
    split_mxc,
    tmp_files,
    upload,
    upload_raw,
)
from tests.support.server import RunningServer

CREATE = "/_matrix/media/v1/create"


def create(client: Client) -> tuple[str, str, int]:
    response = client.post(CREATE)
    assert response.status == 200, response
    server_name, media_id = split_mxc(response.body["content_uri"])
    return server_name, media_id, response.body["unused_expires_at"]


def put(client: Client, server_name: str, media_id: str, data: bytes, content_type: str = "text/plain",
        filename: str | None = None) -> requests.Response:
    return upload_raw(client, data, content_type, filename, path=f"{LEGACY_MEDIA}/upload/{server_name}/{media_id}",
                      method="PUT")


@pytest.fixture(scope="module")
def alice(server: RunningServer) -> Client:
    return register_user(server.base_url)


def test_create_then_upload_then_download(alice: Client) -> None:
    before = int(time.time() * 1000)
    server_name, media_id, expires_at = create(alice)
    assert server_name == "test.local"
    assert before + 23 * 3_600_000 < expires_at < before + 25 * 3_600_000  # the 24h default
    response = put(alice, server_name, media_id, b"later content", filename="later.txt")
    assert (response.status_code, response.json()) == (200, {})
    fetched = download(alice, server_name, media_id)
    assert fetched.status_code == 200 and fetched.content == b"later content"
    assert fetched.headers["Content-Disposition"] == "inline; filename=later.txt"


def test_second_upload_cannot_overwrite(server: RunningServer, alice: Client) -> None:
    server_name, media_id, _ = create(alice)
    assert put(alice, server_name, media_id, b"first").status_code == 200
    before = media_files(server)
    again = put(alice, server_name, media_id, b"second")
    assert (again.status_code, again.json()["errcode"]) == (409, "M_CANNOT_OVERWRITE_MEDIA")
    assert download(alice, server_name, media_id).content == b"first"
    assert media_files(server) == before and tmp_files(server) == []


def test_direct_upload_ids_cannot_be_overwritten_either(alice: Client) -> None:
    server_name, media_id = upload(alice, b"direct")
    again = put(alice, server_name, media_id, b"second")
    assert (again.status_code, again.json()["errcode"]) == (409, "M_CANNOT_OVERWRITE_MEDIA")


def test_only_the_creator_may_upload(server: RunningServer, alice: Client) -> None:
    mallory = register_user(server.base_url)
    server_name, media_id, _ = create(alice)
    refused = put(mallory, server_name, media_id, b"mine now")
    assert (refused.status_code, refused.json()["errcode"]) == (403, "M_FORBIDDEN")
    assert put(alice, server_name, media_id, b"mine").status_code == 200


@pytest.mark.parametrize(("server_name", "media_id"), [
    ("test.local", "NeverCreatedThisOneXYZab"), ("test.local", "..%2F..%2Fx"), ("elsewhere.example", "abcdefgh"),
])
def test_unknown_ids_and_other_servers_are_not_found(server: RunningServer, alice: Client, server_name: str,
                                                     media_id: str) -> None:
    before = media_files(server)
    response = put(alice, server_name, media_id, b"data")
    assert (response.status_code, response.json()["errcode"]) == (404, "M_NOT_FOUND")
    assert media_files(server) == before and tmp_files(server) == []


def test_download_before_upload_is_not_yet_uploaded(alice: Client) -> None:
    server_name, media_id, _ = create(alice)
    started = time.monotonic()
    response = download(alice, server_name, media_id, timeout_ms=300)
    assert (response.status_code, response.json()["errcode"]) == (504, "M_NOT_YET_UPLOADED")
    assert time.monotonic() - started >= 0.3
    thumb = requests.get(f"{alice.base_url}{CLIENT_MEDIA}/thumbnail/{server_name}/{media_id}",
                         params={"width": 32, "height": 32, "timeout_ms": 0},
                         headers={"Authorization": f"Bearer {alice.access_token}"}, timeout=30)
    assert (thumb.status_code, thumb.json()["errcode"]) == (504, "M_NOT_YET_UPLOADED")


def test_a_waiting_download_gets_the_upload(alice: Client) -> None:
    server_name, media_id, _ = create(alice)
    result: dict[str, requests.Response] = {}
    waiter = threading.Thread(target=lambda: result.update(r=download(alice, server_name, media_id,
                                                                      timeout_ms=20000)))
    waiter.start()
    time.sleep(0.3)
    assert put(alice, server_name, media_id, b"arrived").status_code == 200
    waiter.join(30)
    assert result["r"].status_code == 200 and result["r"].content == b"arrived"


def test_bad_timeout_is_refused(alice: Client) -> None:
    server_name, media_id = upload(alice, b"x")
    response = download(alice, server_name, media_id, timeout_ms="soon")
    assert (response.status_code, response.json()["errcode"]) == (400, "M_INVALID_PARAM")


# On the tight server: 3 pending IDs at most, and IDs expire after 3 seconds.

def test_pending_uploads_are_limited(tight_server: RunningServer) -> None:
    client = register_user(tight_server.base_url)
    created = [create(client) for _ in range(3)]
    refused = client.post(CREATE)
    assert (refused.status, refused.errcode) == (429, "M_LIMIT_EXCEEDED")
    assert 0 < refused.body["retry_after_ms"] <= 3000
    server_name, media_id, _ = created[0]
    assert put(client, server_name, media_id, b"done").status_code == 200
    create(client)  # one slot free again
    other = register_user(tight_server.base_url)
    create(other)


def test_expired_ids_cannot_be_uploaded_to(tight_server: RunningServer) -> None:
    client = register_user(tight_server.base_url)
    server_name, media_id, expires_at = create(client)
    time.sleep(max(0.0, expires_at / 1000 - time.time()) + 0.2)
    late = put(client, server_name, media_id, b"too late")
    assert (late.status_code, late.json()["errcode"]) == (404, "M_NOT_FOUND")
    gone = download(client, server_name, media_id)
    assert (gone.status_code, gone.json()["errcode"]) == (404, "M_NOT_FOUND")
    assert tmp_files(tight_server) == []
    create(client)  # the expired ID no longer counts as pending
