"""URL previews (``preview_url``): fetch a page, read its OpenGraph tags, keep the answer an hour.

Off unless ``url_preview_enabled``; then ``url_preview_ip_range_blacklist`` is required (the
config refuses to load without it) and, with ``url_preview_ip_range_whitelist``, is the
address filter of the previews' own instance of the one outbound client: every hop of every
redirect is checked at connect time, so neither a private address nor a name that resolves to
one is ever dialled.  A page (or image) may be at most ``max_spider_size`` bytes and must
arrive within PREVIEW_TIMEOUT_S; it is written to ``tmp/`` as it arrives, never held whole
unless it is HTML to parse.  The page's ``og:image`` (or the URL itself, if it is an image) is
downloaded the same way and stored as media of ours, so clients get an mxc:// URI, never a
third-party URL to fetch.  Concurrent requests for one URL share one fetch.
"""

from __future__ import annotations

import logging
import os
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import attrs
from twisted.internet.threads import deferToThread

from homeserver.async_utils import SharedLookups
from homeserver.errors import MatrixError, forbidden, invalid_param, too_large, unrecognized
from homeserver.handlers.accounts.auth import now_ms
from homeserver.handlers.media.filestore import FileSink, MediaFileStore
from homeserver.handlers.media.opengraph import decode_html, parse_page
from homeserver.handlers.media.repository import MediaRepository
from homeserver.outbound.address_filter import AddressFilter
from homeserver.outbound.client import (
    BlockedDestinationError,
    OutboundHttpClient,
    OutboundRequestError,
    ResponseTooLargeError,
)
from homeserver.server import Server
from homeserver.spooled_file import SpooledFile
from storage.stores.url_previews import UrlPreviewStore

logger = logging.getLogger(__name__)

PREVIEW_TIMEOUT_S = 20.0
CACHE_FOR_MS = 3_600_000
MAX_REDIRECTS = 5
MAX_URL_LENGTH = 2048
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_URL_SAFE = "/?#[]@!$&'()*+,;=%:~"


def bad_gateway(message: str) -> MatrixError:
    return MatrixError(502, "M_UNKNOWN", message)


def normalise_url(url: str) -> str:
    """An http(s) URL as we will request it (IDNA host, percent-encoded rest); 400 otherwise."""
    if len(url) > MAX_URL_LENGTH:
        raise invalid_param(f"url may be at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        raise invalid_param("url is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise invalid_param("url must be an http or https URL")
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise invalid_param("url has a host name that cannot be encoded") from None
    if ":" in ascii_host:
        ascii_host = f"[{ascii_host}]"
    netloc = ascii_host if port is None else f"{ascii_host}:{port}"
    return urlunsplit((parts.scheme, netloc, quote(parts.path, safe=_URL_SAFE) or "/",
                       quote(parts.query, safe=_URL_SAFE), ""))


@attrs.frozen
class Fetched:
    body: SpooledFile
    media_type: str  # the base type, lower case
    charset: str | None
    url: str  # after redirects


def _content_type(value: str | None) -> tuple[str, str | None]:
    if not value:
        return "application/octet-stream", None
    base, _, params = value.partition(";")
    charset = None
    for param in params.split(";"):
        name, _, param_value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = param_value.strip().strip('"') or None
    return base.strip().lower() or "application/octet-stream", charset


def _parse(fetched: Fetched) -> dict[str, str]:
    """Read and parse a fetched page (in a thread: a large page takes a while)."""
    with open(fetched.body.path, "rb") as handle:
        page = handle.read()
    return parse_page(decode_html(page, fetched.charset), fetched.url)


class UrlPreviewer:
    def __init__(self, hs: Server) -> None:
        config = hs.config
        self.hs = hs
        self.enabled = bool(config.url_preview_enabled)
        self.max_size = int(config.max_spider_size)
        self.accept_language = ", ".join(config.url_preview_accept_language)
        self.store = hs.get(UrlPreviewStore)
        self.files = hs.get(MediaFileStore)
        self.repository = hs.get(MediaRepository)
        self.http: OutboundHttpClient | None = None
        if self.enabled:
            address_filter = AddressFilter.from_ranges(config.url_preview_ip_range_blacklist or [],
                                                       config.url_preview_ip_range_whitelist)
            self.http = OutboundHttpClient(hs, address_filter=address_filter)
        self._previews: SharedLookups[str, dict[str, Any]] = SharedLookups()
        self._next_sweep_ms = 0

    async def preview(self, user_id: str, url: str) -> dict[str, Any]:
        if self.http is None:
            raise unrecognized(404, "URL previews are disabled on this server")
        url = normalise_url(url)
        cached = await self.store.get_fresh(url, now_ms(self.hs))
        if cached is not None:
            return cached
        return await self._previews.run(url, lambda: self._make(user_id, url))

    async def _make(self, user_id: str, url: str) -> dict[str, Any]:
        fetched = await self._fetch(url)
        if fetched.media_type in HTML_TYPES:
            try:
                og: dict[str, Any] = await deferToThread(_parse, fetched)  # up to max_spider_size of HTML
            finally:
                self.files.discard(fetched.body)
            image_url = og.pop("og:image", None)
            if image_url:
                og.update(await self._image_or_nothing(user_id, image_url))
        elif fetched.media_type.startswith("image/"):
            name = unquote(os.path.basename(urlsplit(fetched.url).path))
            og = {**({"og:title": name} if name else {}), **await self._store_image(user_id, fetched)}
        else:
            self.files.discard(fetched.body)
            og = {}
        now = now_ms(self.hs)
        await self.store.put(url, now, now + CACHE_FOR_MS, og)
        if now >= self._next_sweep_ms:
            self._next_sweep_ms = now + CACHE_FOR_MS
            await self.store.delete_expired(now)
        return og

    async def _image_or_nothing(self, user_id: str, image_url: str) -> dict[str, Any]:
        """The page's image as media of ours, or no image at all if it cannot be had."""
        try:
            fetched = await self._fetch(normalise_url(image_url))
        except MatrixError as exc:
            logger.info("preview image %s not fetched: %s", image_url, exc)
            return {}
        if not fetched.media_type.startswith("image/"):
            self.files.discard(fetched.body)
            return {}
        try:
            return await self._store_image(user_id, fetched)
        except MatrixError as exc:  # the preview is still worth having without its image
            logger.warning("preview image %s not stored: %s", image_url, exc)
            return {}

    async def _store_image(self, user_id: str, fetched: Fetched) -> dict[str, Any]:
        """Keep a fetched image as media of ours: the og:image keys that describe it."""
        uri = await self.repository.upload(user_id, fetched.body, fetched.media_type, None, quota=False)
        return {"og:image": uri, "og:image:type": fetched.media_type, "matrix:image:size": fetched.body.length}

    async def _fetch(self, url: str) -> Fetched:
        """GET ``url`` (redirects followed, each hop filtered) into ``tmp/``; Matrix errors for failures."""
        assert self.http is not None
        headers = {"Accept-Language": self.accept_language, "Accept": "text/html, image/*;q=0.9, */*;q=0.5"}
        sink = FileSink(self.files.tmp_dir, self.max_size)
        try:
            response = await self.http.request("GET", url, headers=headers, timeout_s=PREVIEW_TIMEOUT_S,
                                               follow_redirects=MAX_REDIRECTS, max_response_bytes=self.max_size)
            if not 200 <= response.code < 300:
                response.discard()
                raise bad_gateway(f"The page answered {response.code}")
            await response.stream_to(sink.write)
        except BlockedDestinationError:
            sink.discard()
            raise forbidden("This URL may not be previewed: its address is blocked") from None
        except ResponseTooLargeError:
            sink.discard()
            raise too_large(f"The page is larger than this server's limit of {self.max_size} bytes") from None
        except OutboundRequestError as exc:
            sink.discard()
            logger.info("URL preview of %s failed: %s", url, exc)
            raise bad_gateway(f"Failed to fetch the page: {exc}") from None
        except BaseException:
            sink.discard()
            raise
        media_type, charset = _content_type(response.header("Content-Type"))
        return Fetched(sink.done(), media_type, charset, response.url)
