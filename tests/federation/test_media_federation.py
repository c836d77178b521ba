"""Media over federation between Vignette servers: serving ``/_matrix/federation/v1/media/*``
(signed, multipart/mixed), fetching and caching another server's media and thumbnails, and a
hostile origin (wrong type, oversize, cut off, malformed multipart, a Location to a blocked
address) that must give Matrix errors and leave no file behind."""

from __future__ import annotations

import email.parser
import email.policy
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import attrs
import pytest
import requests

from tests.support.client import Client
from tests.support.databases import ENGINES, drop_database
from tests.support.federation import FederationNet, ScriptedPeer, unique_label
from tests.support.media import (
    auth_headers,
    decode,
    download,
    image_bytes,
    media_files,
    new_admin,
    thumbnail,
    tmp_files,
    upload,
)
from tests.support.rooms import new_user
from tests.support.server import RunningServer

FETCHER_MAX_UPLOAD = 256 * 1024
FEDERATION_MEDIA = "/_matrix/federation/v1/media"


@attrs.define
class Pair:
    a: RunningServer  # the origin
    b: RunningServer  # fetches A's media for its own users (small max_upload_size)


@pytest.fixture(scope="module", params=ENGINES)
def pair(request: pytest.FixtureRequest, fednet: FederationNet,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    started: list[tuple[RunningServer, dict]] = []
    try:
        for label, extra in (("media-a", {}), ("media-b", {"max_upload_size": FETCHER_MAX_UPLOAD})):
            directory: Path = tmp_path_factory.mktemp(f"{label}-{request.param}")
            started.append(fednet.start_server(directory, request.param, unique_label(label), **extra))
        yield Pair(started[0][0], started[1][0])
    finally:
        for server, database in started:
            server.stop()
            drop_database(database)


def parse_multipart(response: requests.Response) -> list[Any]:
    """The parts of a multipart/mixed answer, parsed by the standard library's MIME parser."""
    raw = b"Content-Type: " + response.headers["Content-Type"].encode() + b"\r\n\r\n" + response.content
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    assert message.get_content_type() == "multipart/mixed"
    return list(message.iter_parts())


def remote_files(server: RunningServer) -> list[Path]:
    return [path for path in media_files(server) if "remote_content" in path.parts]


# Serving our media to other servers


def test_federation_download_is_signed_multipart(pair: Pair, fednet: FederationNet) -> None:
    alice = new_user(pair.a.base_url)
    data = b"federated bytes\n" * 100
    _, media_id = upload(alice, data, "text/plain", "notes.txt")
    peer = ScriptedPeer(fednet)
    try:
        unsigned = peer.request("GET", pair.a, f"{FEDERATION_MEDIA}/download/{media_id}", authorization=False)
        assert unsigned.status_code == 401
        assert unsigned.json()["errcode"] == "M_UNAUTHORIZED"
        response = peer.request("GET", pair.a, f"{FEDERATION_MEDIA}/download/{media_id}")
        assert response.status_code == 200, response.text
        metadata, media = parse_multipart(response)
        assert metadata.get_content_type() == "application/json"
        assert metadata.get_payload(decode=True) == b"{}"
        assert media.get_content_type() == "text/plain"
        assert media.get_param("charset") == "UTF-8"
        assert "notes.txt" in media["Content-Disposition"]
        assert media.get_payload(decode=True) == data
        missing = peer.request("GET", pair.a, f"{FEDERATION_MEDIA}/download/NoSuchMediaHereAtAll")
        assert missing.status_code == 404
        assert missing.json()["errcode"] == "M_NOT_FOUND"
    finally:
        peer.stop()


def test_federation_thumbnail_is_a_decodable_image(pair: Pair, fednet: FederationNet) -> None:
    alice = new_user(pair.a.base_url)
    _, media_id = upload(alice, image_bytes("PNG"), "image/png", "red.png")
    peer = ScriptedPeer(fednet)
    try:
        uri = f"{FEDERATION_MEDIA}/thumbnail/{media_id}?width=32&height=32&method=crop"
        response = peer.request("GET", pair.a, uri)
        assert response.status_code == 200, response.text
        _, media = parse_multipart(response)
        assert media["Content-Type"] == "image/png"
        assert decode(media.get_payload(decode=True)).size == (32, 32)
        bad = peer.request("GET", pair.a, f"{FEDERATION_MEDIA}/thumbnail/{media_id}?width=32")
        assert bad.status_code == 400
        assert bad.json()["errcode"] == "M_MISSING_PARAM"
    finally:
        peer.stop()


# Fetching another server's media


def test_remote_download_is_fetched_and_cached(pair: Pair) -> None:
    alice, bob = new_user(pair.a.base_url), new_user(pair.b.base_url)
    data = bytes(range(256)) * 400  # 100 KiB, under B's limit
    name = "résumé 日本.bin"
    server_name, media_id = upload(alice, data, "application/octet-stream", name)
    assert server_name == pair.a.server_name
    response = download(bob, server_name, media_id)
    assert response.status_code == 200, response.text
    assert response.content == data
    assert response.headers["Content-Type"] == "application/octet-stream"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment; filename*=utf-8''")
    assert unquote(disposition.split("''", 1)[1]) == name
    # Deleted at the origin, it is still served from B's cache.
    admin = new_admin(pair.a)
    deleted = requests.delete(f"{pair.a.base_url}/_synapse/admin/v1/media/{server_name}/{media_id}",
                              headers=auth_headers(admin), timeout=30)
    assert deleted.status_code == 200, deleted.text
    assert download(alice, server_name, media_id).status_code == 404
    again = download(bob, server_name, media_id)
    assert again.status_code == 200
    assert again.content == data


def test_remote_thumbnail(pair: Pair) -> None:
    alice, bob = new_user(pair.a.base_url), new_user(pair.b.base_url)
    server_name, media_id = upload(alice, image_bytes("JPEG", (640, 480)), "image/jpeg", "photo.jpg")
    response = thumbnail(bob, server_name, media_id, width=96, height=96, method="crop")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "image/jpeg"
    assert decode(response.content).size == (96, 96)
    scaled = thumbnail(bob, server_name, media_id, width=320, height=240, method="scale")
    assert scaled.status_code == 200
    assert decode(scaled.content).size == (320, 240)


def test_unknown_remote_media_is_not_found(pair: Pair) -> None:
    bob = new_user(pair.b.base_url)
    before = remote_files(pair.b)
    response = download(bob, pair.a.server_name, "NoSuchMediaAnywhere")
    assert response.status_code == 404
    assert response.json()["errcode"] == "M_NOT_FOUND"
    assert remote_files(pair.b) == before


def test_remote_media_too_large_for_us(pair: Pair) -> None:
    alice, bob = new_user(pair.a.base_url), new_user(pair.b.base_url)
    before = remote_files(pair.b)
    _, media_id = upload(alice, b"x" * (FETCHER_MAX_UPLOAD + 1), "application/octet-stream")
    response = download(bob, pair.a.server_name, media_id)
    assert response.status_code == 413
    assert response.json()["errcode"] == "M_TOO_LARGE"
    assert tmp_files(pair.b) == []
    assert remote_files(pair.b) == before


# A hostile origin


class HostileOrigin:
    """A ScriptedPeer whose media endpoints answer as each test's media ID says."""

    def __init__(self, fednet: FederationNet) -> None:
        self.peer = ScriptedPeer(fednet)
        self.peer.http.routes[("GET", f"{FEDERATION_MEDIA}/download/*")] = self._federation
        self.peer.http.routes[("GET", "/_matrix/media/v3/download/*")] = self._legacy
        self.location: str = ""

    @property
    def server_name(self) -> str:
        return self.peer.server_name

    def _federation(self, handler: BaseHTTPRequestHandler) -> tuple[int, Any]:
        media_id = handler.path.split("?")[0].rsplit("/", 1)[1]
        boundary = "b0undary"
        json_part = b"--b0undary\r\nContent-Type: application/json\r\n\r\n{}\r\n"
        def multipart(body: bytes, headers: bytes = b"Content-Type: text/plain\r\n") -> bytes:
            return json_part + b"--b0undary\r\n" + headers + b"\r\n" + body + b"\r\n--b0undary--\r\n"

        if media_id == "GoodMedia":
            body = multipart(b"hello from afar", b"Content-Type: text/plain\r\n"
                                                 b"Content-Disposition: inline; filename=afar.txt\r\n")
        elif media_id == "WrongType":
            return write(handler, 200, "application/json", b"{}")
        elif media_id == "Oversize":
            body = multipart(b"y" * (FETCHER_MAX_UPLOAD + 10))
        elif media_id == "Truncated":
            full = multipart(b"z" * 50_000)
            return write(handler, 200, f"multipart/mixed; boundary={boundary}", full[:30_000], length=len(full))
        elif media_id == "FirstPartNotJson":
            body = (b"--b0undary\r\nContent-Type: text/plain\r\n\r\nnope\r\n--b0undary\r\n"
                    b"Content-Type: text/plain\r\n\r\nbody\r\n--b0undary--\r\n")
        elif media_id == "NoCloseDelimiter":
            body = json_part + b"--b0undary\r\nContent-Type: text/plain\r\n\r\n" + b"w" * 5000
        elif media_id == "ThreeParts":
            body = multipart(b"one").replace(b"--b0undary--", b"--b0undary\r\n\r\nthree\r\n--b0undary--")
        elif media_id.startswith("Located"):
            body = json_part + (b"--b0undary\r\nLocation: " + self.location.encode() +
                                b"\r\n\r\n\r\n--b0undary--\r\n")
        elif media_id == "NotYet":
            return write(handler, 504, "application/json", b'{"errcode": "M_NOT_YET_UPLOADED", "error": "wait"}')
        elif media_id == "Gone":
            return write(handler, 404, "application/json", b'{"errcode": "M_NOT_FOUND", "error": "gone"}')
        else:  # an origin that predates the federation media endpoints
            return write(handler, 404, "application/json", b'{"errcode": "M_UNRECOGNIZED", "error": "?"}')
        return write(handler, 200, f"multipart/mixed; boundary={boundary}", body)

    def _legacy(self, handler: BaseHTTPRequestHandler) -> tuple[int, Any]:
        media_id = handler.path.split("?")[0].rsplit("/", 1)[1]
        if media_id == "LegacyOnly":
            assert "allow_remote=false" in handler.path
            return write(handler, 200, "image/gif", b"GIF89a-legacy",
                         extra={"Content-Disposition": "attachment; filename=\"old.gif\""})
        return write(handler, 404, "application/json", b'{"errcode": "M_NOT_FOUND", "error": "no"}')

    def stop(self) -> None:
        self.peer.stop()


def write(handler: BaseHTTPRequestHandler, status: int, content_type: str, body: bytes,
          length: int | None = None, extra: dict[str, str] | None = None) -> tuple[int, Any]:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body) if length is None else length))
    for name, value in (extra or {}).items():
        handler.send_header(name, value)
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.wfile.write(body)
    handler.wfile.flush()
    return 0, None


@pytest.fixture(scope="module")
def hostile(fednet: FederationNet) -> Iterator[HostileOrigin]:
    origin = HostileOrigin(fednet)
    try:
        yield origin
    finally:
        origin.stop()


@pytest.fixture(scope="module")
def plain_http() -> Iterator[str]:
    """A plain HTTP file server on 127.0.0.1 (what a Location may point at)."""
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            write(self, 200, "image/png", b"\x89PNG located")

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/file"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def carol(pair: Pair) -> Client:
    return new_user(pair.b.base_url)


def test_hostile_good_media_still_works(pair: Pair, hostile: HostileOrigin, carol: Client) -> None:
    response = download(carol, hostile.server_name, "GoodMedia")
    assert response.status_code == 200, response.text
    assert response.content == b"hello from afar"
    assert response.headers["Content-Disposition"] == "inline; filename=afar.txt"


def test_falls_back_to_the_legacy_endpoint(pair: Pair, hostile: HostileOrigin, carol: Client) -> None:
    response = download(carol, hostile.server_name, "LegacyOnly")
    assert response.status_code == 200, response.text
    assert response.content == b"GIF89a-legacy"
    assert response.headers["Content-Type"] == "image/gif"
    assert response.headers["Content-Disposition"] == "inline; filename=old.gif"


@pytest.mark.parametrize(("media_id", "status", "errcode"), [
    ("WrongType", 502, "M_UNKNOWN"),
    ("Oversize", 413, "M_TOO_LARGE"),
    ("Truncated", 502, "M_UNKNOWN"),
    ("FirstPartNotJson", 502, "M_UNKNOWN"),
    ("NoCloseDelimiter", 502, "M_UNKNOWN"),
    ("ThreeParts", 502, "M_UNKNOWN"),
    ("NotYet", 504, "M_NOT_YET_UPLOADED"),
    ("Gone", 404, "M_NOT_FOUND"),
    ("NeitherEndpoint", 404, "M_NOT_FOUND"),
])
def test_hostile_answers_are_matrix_errors(pair: Pair, hostile: HostileOrigin, carol: Client, media_id: str,
                                           status: int, errcode: str) -> None:
    before = remote_files(pair.b)
    response = download(carol, hostile.server_name, media_id)
    assert response.status_code == status, response.text
    assert response.json()["errcode"] == errcode
    assert tmp_files(pair.b) == []
    assert remote_files(pair.b) == before
    # Not cached as a failure either: asking again asks the origin again, with the same answer.
    assert download(carol, hostile.server_name, media_id).status_code == status


def test_location_is_followed_through_the_ip_guard(pair: Pair, hostile: HostileOrigin, carol: Client,
                                                   plain_http: str) -> None:
    hostile.location = plain_http
    response = download(carol, hostile.server_name, "LocatedOk")
    assert response.status_code == 200, response.text
    assert response.content == b"\x89PNG located"
    assert response.headers["Content-Type"] == "image/png"


def test_location_to_a_blocked_address_is_refused(pair: Pair, hostile: HostileOrigin, carol: Client) -> None:
    # Only 127.0.0.1 is whitelisted on the test network; the rest of 127/8 stays blocked.
    hostile.location = "http://127.0.0.2:9/file"
    before = remote_files(pair.b)
    response = download(carol, hostile.server_name, "LocatedBlocked")
    assert response.status_code == 403, response.text
    assert response.json()["errcode"] == "M_FORBIDDEN"
    assert tmp_files(pair.b) == []
    assert remote_files(pair.b) == before


def test_unauthenticated_requests_never_make_us_fetch(pair: Pair) -> None:
    alice, bob = new_user(pair.a.base_url), new_user(pair.b.base_url)
    server_name, media_id = upload(alice, b"not for the legacy endpoints", "text/plain")
    before = remote_files(pair.b)
    legacy = download(bob, server_name, media_id, authenticated=False)
    assert legacy.status_code == 404
    assert legacy.json()["errcode"] == "M_NOT_FOUND"
    assert remote_files(pair.b) == before
    assert download(bob, server_name, media_id).status_code == 200
    assert len(remote_files(pair.b)) == len(before) + 1
    # Fetched while enable_authenticated_media is on: still not served on the legacy path.
    assert download(bob, server_name, media_id, authenticated=False).status_code == 404


def test_admin_quarantine_and_purge_of_cached_remote_media(pair: Pair) -> None:
    alice, bob = new_user(pair.a.base_url), new_user(pair.b.base_url)
    admin = new_admin(pair.b)
    admin_api = f"{pair.b.base_url}/_synapse/admin/v1"
    server_name, quarantined_id = upload(alice, b"to be quarantined", "text/plain")
    _, purged_id = upload(alice, b"to be purged", "text/plain")
    for media_id in (quarantined_id, purged_id):
        assert download(bob, server_name, media_id).status_code == 200
    response = requests.post(f"{admin_api}/media/quarantine/{server_name}/{quarantined_id}",
                             headers=auth_headers(admin), timeout=30)
    assert response.status_code == 200, response.text
    assert download(bob, server_name, quarantined_id).status_code == 404
    # The same bytes under another ID are quarantined as they arrive.
    _, copy_id = upload(alice, b"to be quarantined", "text/plain")
    assert download(alice, server_name, copy_id).status_code == 200
    assert download(bob, server_name, copy_id).status_code == 404
    cached = len(remote_files(pair.b))
    purge = requests.post(f"{admin_api}/purge_media_cache", params={"before_ts": 10**13},
                          headers=auth_headers(admin), timeout=30)
    assert purge.status_code == 200, purge.text
    assert purge.json()["deleted"] >= 1
    assert len(remote_files(pair.b)) < cached
    # Purged from the cache, it is fetched again on the next request.
    again = download(bob, server_name, purged_id)
    assert again.status_code == 200
    assert again.content == b"to be purged"
