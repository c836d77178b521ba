"""URL previews against a local web server: OpenGraph and its fallbacks, the page's image stored
as our media, the size limit, the cache, and the address filter (a private address, directly or
through a redirect, is never dialled)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support.accounts import custom_server
from tests.support.client import Client, register_user
from tests.support.databases import ENGINES
from tests.support.media import (
    CLIENT_MEDIA,
    LEGACY_MEDIA,
    decode,
    download,
    image_bytes,
    split_mxc,
    tmp_files,
)
from tests.support.server import RunningServer

MAX_SPIDER = 64 * 1024
PNG = image_bytes("PNG", (120, 80))


class Site:
    """A web server on (host, 0) with fixed pages; counts requests per path and connections."""

    def __init__(self, host: str, pages: dict[str, tuple[int, dict[str, str], bytes]]) -> None:
        hits: dict[str, int] = {}
        self.hits = hits

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                hits[self.path] = hits.get(self.path, 0) + 1
                status, headers, body = pages.get(self.path, (404, {"Content-Type": "text/plain"}, b"no"))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            connections = 0

            def get_request(self) -> Any:
                Server.connections += 1
                return super().get_request()

        self.httpd = Server((host, 0), Handler)
        self.server_class = Server
        self.base = f"http://{host}:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def connections(self) -> int:
        return self.server_class.connections

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def html(text: str, charset: str = "utf-8") -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": f"text/html; charset={charset}"}, text.encode(charset)


@pytest.fixture(scope="module")
def blocked_site() -> Iterator[Site]:
    """On 127.0.0.2: inside url_preview_ip_range_blacklist and not whitelisted."""
    site = Site("127.0.0.2", {"/": html("<title>secret</title>")})
    try:
        yield site
    finally:
        site.stop()


@pytest.fixture(scope="module")
def site(blocked_site: Site) -> Iterator[Site]:
    pages = {
        "/og": html('<html><head><meta property="og:title" content="The &amp; Title">'
                    '<meta property="og:description" content="What it is about">'
                    '<meta property="og:image" content="/pic.png"><meta property="og:type" content="article">'
                    "<title>ignored</title></head><body><p>ignored too</p></body></html>"),
        "/pic.png": (200, {"Content-Type": "image/png"}, PNG),
        "/fallback": html('<html><head><title>  Plain\n page </title><meta name="description" content="Described">'
                          "</head><body><p>not this</p></body></html>"),
        "/paragraph": html("<html><head><title>Para</title></head><body><p>First <b>para</b>graph.</p>"
                           "<p>second</p></body></html>"),
        "/latin1": html("<title>Caf\u00e9 cr\u00e8me</title>", charset="iso-8859-1"),
        "/image": (200, {"Content-Type": "image/png"}, PNG),
        "/text": (200, {"Content-Type": "text/plain"}, b"just text"),
        "/big": html("<title>big</title>" + "x" * (MAX_SPIDER + 1)),
        "/broken": (500, {"Content-Type": "text/plain"}, b"oops"),
        "/cached": html("<title>once</title>"),
        "/redirect": (302, {"Location": "/og"}, b""),
        "/to-private": (302, {"Location": f"{blocked_site.base}/"}, b""),
        "/bad-image": html('<title>No picture</title><meta property="og:image" content="/broken">'),
    }
    site = Site("127.0.0.1", pages)
    try:
        yield site
    finally:
        site.stop()


@pytest.fixture(scope="module", params=ENGINES)
def preview_server(request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = {"url_preview_enabled": True, "url_preview_ip_range_blacklist": ["127.0.0.0/8", "::1/128"],
              "url_preview_ip_range_whitelist": ["127.0.0.1/32"], "max_spider_size": MAX_SPIDER}
    with custom_server(tmp_path_factory.mktemp(f"previews-{request.param}"), request.param, **config) as running:
        yield running


@pytest.fixture(scope="module")
def alice(preview_server: RunningServer) -> Client:
    return register_user(preview_server.base_url)


def preview(client: Client, url: str, legacy: bool = False) -> Any:
    return client.get(f"{LEGACY_MEDIA if legacy else CLIENT_MEDIA}/preview_url", params={"url": url})


def test_opengraph_with_the_image_stored_as_our_media(preview_server: RunningServer, alice: Client,
                                                       site: Site) -> None:
    response = preview(alice, f"{site.base}/og")
    assert response.status == 200, response
    og = response.body
    assert og["og:title"] == "The & Title"
    assert og["og:description"] == "What it is about"
    assert og["og:type"] == "article"
    assert og["og:image:type"] == "image/png"
    assert og["matrix:image:size"] == len(PNG)
    server_name, media_id = split_mxc(og["og:image"])
    assert server_name == preview_server.server_name
    stored = download(alice, server_name, media_id)
    assert stored.status_code == 200
    assert decode(stored.content).size == (120, 80)


def test_title_and_description_fallbacks(alice: Client, site: Site) -> None:
    fallback = preview(alice, f"{site.base}/fallback")
    assert fallback.status == 200
    assert fallback.body == {"og:title": "Plain page", "og:description": "Described"}
    paragraph = preview(alice, f"{site.base}/paragraph", legacy=True)
    assert paragraph.body == {"og:title": "Para", "og:description": "First paragraph."}
    latin1 = preview(alice, f"{site.base}/latin1")
    assert latin1.body == {"og:title": "Caf\u00e9 cr\u00e8me"}


def test_an_image_url_previews_as_the_image(alice: Client, site: Site) -> None:
    response = preview(alice, f"{site.base}/image")
    assert response.status == 200
    assert response.body["og:image"].startswith("mxc://")
    assert response.body["og:image:type"] == "image/png"
    assert response.body["matrix:image:size"] == len(PNG)


def test_other_types_and_a_missing_image_give_what_there_is(alice: Client, site: Site) -> None:
    assert preview(alice, f"{site.base}/text").body == {}
    assert preview(alice, f"{site.base}/bad-image").body == {"og:title": "No picture"}


def test_redirects_are_followed(alice: Client, site: Site) -> None:
    response = preview(alice, f"{site.base}/redirect")
    assert response.status == 200
    assert response.body["og:title"] == "The & Title"


def test_previews_are_cached(alice: Client, site: Site) -> None:
    before = site.hits.get("/cached", 0)  # the site serves both engines' servers
    first = preview(alice, f"{site.base}/cached")
    second = preview(register_user(alice.base_url), f"{site.base}/cached")
    assert first.body == second.body == {"og:title": "once"}
    assert site.hits["/cached"] == before + 1


def test_size_limit_and_failures(preview_server: RunningServer, alice: Client, site: Site) -> None:
    big = preview(alice, f"{site.base}/big")
    assert (big.status, big.errcode) == (413, "M_TOO_LARGE")
    broken = preview(alice, f"{site.base}/broken")
    assert (broken.status, broken.errcode) == (502, "M_UNKNOWN")
    assert tmp_files(preview_server) == []


def test_private_addresses_are_never_dialled(alice: Client, site: Site, blocked_site: Site) -> None:
    direct = preview(alice, f"{blocked_site.base}/")
    assert (direct.status, direct.errcode) == (403, "M_FORBIDDEN")
    redirected = preview(alice, f"{site.base}/to-private")
    assert (redirected.status, redirected.errcode) == (403, "M_FORBIDDEN")
    localhost = preview(alice, "http://[::1]:9/")
    assert (localhost.status, localhost.errcode) == (403, "M_FORBIDDEN")
    assert blocked_site.connections == 0


@pytest.mark.parametrize("url", ["ftp://example.org/", "not a url", "http://", "javascript:alert(1)"])
def test_bad_urls(alice: Client, url: str) -> None:
    response = preview(alice, url)
    assert (response.status, response.errcode) == (400, "M_INVALID_PARAM")


def test_url_is_required(alice: Client) -> None:
    response = alice.get(f"{CLIENT_MEDIA}/preview_url")
    assert (response.status, response.errcode) == (400, "M_MISSING_PARAM")
