"""Uploads and downloads over HTTP: round trips, how files are labelled, limits and bad input."""

from __future__ import annotations

import hashlib
import time
from urllib.parse import unquote

import pytest
import requests

from tests.media.conftest import TIGHT_UPLOAD_SIZE
from tests.support.client import Client, q, register_user
from tests.support.media import (
    CLIENT_MEDIA,
    CSP,
    LEGACY_MEDIA,
    auth_headers,
    download,
    media_files,
    raw_http,
    tmp_files,
    upload,
    upload_raw,
)
from tests.support.server import RunningServer


@pytest.fixture(scope="module")
def alice(server: RunningServer) -> Client:
    return register_user(server.base_url)


def assert_sandboxed(response: requests.Response) -> None:
    assert response.headers["Content-Security-Policy"] == CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_round_trip_with_ascii_filename(alice: Client) -> None:
    data = b"%PDF-1.4 not really a pdf\n" * 100
    server_name, media_id = upload(alice, data, "application/pdf", "report.pdf")
    assert server_name == "test.local"
    response = download(alice, server_name, media_id)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"] == "attachment; filename=report.pdf"
    assert int(response.headers["Content-Length"]) == len(data)
    assert_sandboxed(response)


def test_round_trip_with_unicode_filename(alice: Client) -> None:
    name = "résumé 日本.txt"
    server_name, media_id = upload(alice, b"bonjour\n" * 10, "text/plain", name)
    response = download(alice, server_name, media_id)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; charset=UTF-8"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("inline; filename*=utf-8''")
    assert unquote(disposition.split("''", 1)[1]) == name
    assert disposition.isascii()


def test_file_name_in_the_path_overrides_the_uploaded_one(alice: Client) -> None:
    server_name, media_id = upload(alice, b"x" * 10, "image/png", "original.png")
    response = download(alice, server_name, media_id, q("holiday photo.png"))
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == "inline; filename*=utf-8''holiday%20photo.png"


INLINE_OR_NOT = [
    ("image/png", "inline"), ("image/jpeg", "inline"), ("image/gif", "inline"), ("image/webp", "inline"),
    ("video/mp4", "inline"), ("audio/ogg", "inline"), ("text/plain", "inline"), ("application/json", "inline"),
    ("text/html", "attachment"), ("image/svg+xml", "attachment"), ("application/javascript", "attachment"),
    ("text/javascript", "attachment"), ("application/xhtml+xml", "attachment"), ("application/pdf", "attachment"),
    ("application/octet-stream", "attachment"), ("IMAGE/PNG", "inline"), ("text/html; charset=utf-8", "attachment"),
]


@pytest.mark.parametrize(("media_type", "disposition"), INLINE_OR_NOT)
def test_inline_only_for_types_safe_to_render(alice: Client, media_type: str, disposition: str) -> None:
    server_name, media_id = upload(alice, b"<script>alert(1)</script>", media_type, "f")
    for response in (download(alice, server_name, media_id),
                     requests.head(f"{alice.base_url}{CLIENT_MEDIA}/download/{server_name}/{media_id}",
                                   headers=auth_headers(alice), timeout=30)):
        assert response.status_code == 200
        assert response.headers["Content-Disposition"] == f"{disposition}; filename=f"
        assert response.headers["Content-Type"].lower().startswith(media_type.lower())
        assert_sandboxed(response)
        assert response.headers["Cross-Origin-Resource-Policy"] == "cross-origin"


def test_head_sends_headers_without_the_body(alice: Client) -> None:
    server_name, media_id = upload(alice, b"y" * 5000)
    response = requests.head(f"{alice.base_url}{CLIENT_MEDIA}/download/{server_name}/{media_id}",
                             headers=auth_headers(alice), timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Length"] == "5000"
    assert response.content == b""


def test_errors_are_sandboxed_too(alice: Client) -> None:
    response = download(alice, "test.local", "NoSuchMediaIdAtAllHere1")
    assert response.status_code == 404 and response.json()["errcode"] == "M_NOT_FOUND"
    assert_sandboxed(response)


def test_default_content_type_is_octet_stream(alice: Client) -> None:
    server_name, media_id = upload_raw_ok(alice, b"\x00\x01\x02", None)
    response = download(alice, server_name, media_id)
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"] == "attachment"


def upload_raw_ok(client: Client, data: bytes, content_type: str | None) -> tuple[str, str]:
    response = upload_raw(client, data, content_type)
    assert response.status_code == 200, response.text
    server_name, media_id = response.json()["content_uri"][len("mxc://"):].split("/")
    return server_name, media_id


def test_empty_upload_round_trips(alice: Client) -> None:
    server_name, media_id = upload(alice, b"", "text/plain")
    response = download(alice, server_name, media_id)
    assert response.status_code == 200 and response.content == b""


@pytest.mark.parametrize("media_id", ["NoSuchMediaIdAtAllHere1", "..%2F..%2Fetc%2Fpasswd", "%2E%2E", "a",
                                      "..%5C..%5Cwin.ini", "x%00y"])
def test_unknown_or_impossible_media_ids_are_not_found(server: RunningServer, alice: Client, media_id: str) -> None:
    for prefix, headers in ((CLIENT_MEDIA, auth_headers(alice)), (LEGACY_MEDIA, {})):
        for kind in ("download", "thumbnail"):
            response = requests.get(f"{server.base_url}{prefix}/{kind}/test.local/{media_id}",
                                    params={"width": 32, "height": 32}, headers=headers, timeout=30)
            assert response.status_code in (400, 404), response.text
            assert response.json()["errcode"] in ("M_NOT_FOUND", "M_INVALID_PARAM")


def test_bad_and_remote_server_names(alice: Client) -> None:
    bad = download(alice, q("not a server!"), "abcdefgh")
    assert (bad.status_code, bad.json()["errcode"]) == (400, "M_INVALID_PARAM")
    remote = download(alice, "elsewhere.example", "abcdefgh")  # fetched over federation: unreachable
    assert (remote.status_code, remote.json()["errcode"]) == (502, "M_UNKNOWN")
    legacy = download(alice, "elsewhere.example", "abcdefgh", authenticated=False, allow_remote="false")
    assert (legacy.status_code, legacy.json()["errcode"]) == (404, "M_NOT_FOUND")


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/b.png", "..\\boot.ini", "tab\there", "x" * 300])
def test_path_like_filenames_are_refused_and_leave_nothing(server: RunningServer, alice: Client, name: str) -> None:
    before = media_files(server)
    response = upload_raw(alice, b"payload", "text/plain", name)
    assert (response.status_code, response.json()["errcode"]) == (400, "M_INVALID_PARAM")
    assert media_files(server) == before
    server_name, media_id = upload(alice, b"ok", "text/plain", "fine.txt")
    override = download(alice, server_name, media_id, q(name))
    assert (override.status_code, override.json()["errcode"]) == (400, "M_INVALID_PARAM")


def test_non_ascii_content_type_is_refused(alice: Client) -> None:
    response = upload_raw(alice, b"x", "image/p\xe9ng")
    assert (response.status_code, response.json()["errcode"]) == (400, "M_INVALID_PARAM")


def test_tokens_are_required(server: RunningServer, alice: Client) -> None:
    before = media_files(server)
    anonymous = requests.post(f"{server.base_url}{LEGACY_MEDIA}/upload", data=b"z" * 1000, timeout=30)
    assert (anonymous.status_code, anonymous.json()["errcode"]) == (401, "M_MISSING_TOKEN")
    wrong = requests.post(f"{server.base_url}{LEGACY_MEDIA}/upload", data=b"z", timeout=30,
                          headers={"Authorization": "Bearer nope"})
    assert (wrong.status_code, wrong.json()["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    server_name, media_id = upload(alice, b"secret")
    for path in (f"{CLIENT_MEDIA}/download/{server_name}/{media_id}", f"{CLIENT_MEDIA}/config",
                 f"{CLIENT_MEDIA}/thumbnail/{server_name}/{media_id}?width=1&height=1",
                 f"{CLIENT_MEDIA}/preview_url?url=https://example.com", f"{LEGACY_MEDIA}/config"):
        response = requests.get(server.base_url + path, timeout=30)
        assert (response.status_code, response.json()["errcode"]) == (401, "M_MISSING_TOKEN"), path
    assert len(media_files(server)) == len(before) + 1
    assert tmp_files(server) == []


def test_config_reports_the_upload_limit(server: RunningServer, alice: Client) -> None:
    for path in (f"{CLIENT_MEDIA}/config", f"{LEGACY_MEDIA}/config", "/_matrix/media/r0/config"):
        response = alice.get(path)
        assert response.status == 200
        assert response.body == {"m.upload.size": 50 * 1024 * 1024}


def test_url_previews_are_off(alice: Client) -> None:
    for path in (f"{CLIENT_MEDIA}/preview_url", f"{LEGACY_MEDIA}/preview_url"):
        response = alice.get(path, params={"url": "https://matrix.org"})
        assert (response.status, response.errcode) == (404, "M_UNRECOGNIZED")


def test_stored_file_is_what_was_sent(server: RunningServer, alice: Client) -> None:
    data = bytes(range(256)) * 400
    _server_name, media_id = upload(alice, data)
    stored = [p for p in media_files(server) if p.name == media_id[4:]]
    assert len(stored) == 1 and stored[0].parent.name == media_id[2:4] and stored[0].parent.parent.name == media_id[:2]
    assert hashlib.sha256(stored[0].read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()


# Limits, on a server with a 1 MiB upload limit and quotas.

def test_oversized_uploads_get_413_and_leave_nothing(tight_server: RunningServer) -> None:
    client = register_user(tight_server.base_url)
    before = media_files(tight_server)
    declared = upload_raw(client, b"a" * (TIGHT_UPLOAD_SIZE + 1))
    assert (declared.status_code, declared.json()["errcode"]) == (413, "M_TOO_LARGE")
    chunked = upload_raw(client, iter([b"b" * 65536] * (TIGHT_UPLOAD_SIZE // 65536 + 1)))
    assert (chunked.status_code, chunked.json()["errcode"]) == (413, "M_TOO_LARGE")
    assert media_files(tight_server) == before
    exact = upload_raw(client, b"c" * TIGHT_UPLOAD_SIZE)
    assert exact.status_code == 200
    assert len(media_files(tight_server)) == len(before) + 1


def test_upload_quota_per_user(tight_server: RunningServer) -> None:
    uploader, other = register_user(tight_server.base_url), register_user(tight_server.base_url)
    chunk = b"q" * (900 * 1024)
    assert [upload_raw(uploader, chunk).status_code for _ in range(2)] == [200, 200]
    before = media_files(tight_server)
    refused = upload_raw(uploader, chunk)
    assert (refused.status_code, refused.json()["errcode"]) == (403, "M_FORBIDDEN")
    assert "quota" in refused.json()["error"].lower()
    assert media_files(tight_server) == before
    assert upload_raw(uploader, b"small").status_code == 200  # still under 2500K
    assert upload_raw(other, chunk).status_code == 200


def wait_until_no_tmp_files(server: RunningServer) -> list[str]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and tmp_files(server):
        time.sleep(0.05)
    return tmp_files(server)


def test_truncated_upload_leaves_nothing(server: RunningServer, alice: Client) -> None:
    before = media_files(server)
    head = (f"POST {LEGACY_MEDIA}/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {alice.access_token}\r\n"
            "Content-Type: application/octet-stream\r\nContent-Length: 500000\r\n\r\n").encode()
    raw_http(server, head + b"t" * 200_000, read_reply=False)
    assert wait_until_no_tmp_files(server) == []
    assert media_files(server) == before
    assert requests.get(server.base_url + "/health", timeout=10).status_code == 200


def test_malformed_content_length_is_refused(server: RunningServer, alice: Client) -> None:
    before = media_files(server)
    for length in (b"banana", b"-5", b"10, 20"):
        reply = raw_http(server, f"POST {LEGACY_MEDIA}/upload HTTP/1.1\r\nHost: x\r\n"
                                 f"Authorization: Bearer {alice.access_token}\r\n".encode()
                         + b"Content-Length: " + length + b"\r\n\r\n" + b"0123456789")
        assert reply.startswith(b"HTTP/1.1 400"), reply[:100]
    assert wait_until_no_tmp_files(server) == []
    assert media_files(server) == before


def test_short_content_length_stores_only_the_declared_bytes(server: RunningServer, alice: Client) -> None:
    reply = raw_http(server, f"POST {LEGACY_MEDIA}/upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                             f"Authorization: Bearer {alice.access_token}\r\nContent-Length: 4\r\n\r\n".encode()
                     + b"ABCDEFGH")
    status, _, rest = reply.partition(b"\r\n")
    assert status == b"HTTP/1.1 200 OK", reply[:200]
    uri = rest.split(b'"content_uri":"', 1)[1].split(b'"', 1)[0].decode()
    server_name, media_id = uri[len("mxc://"):].split("/")
    assert download(alice, server_name, media_id).content == b"ABCD"
