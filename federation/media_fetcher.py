"""Fetching another server's media, for our cache: the ``RemoteMediaFetcher`` of the media repository.

First the authenticated ``/_matrix/federation/v1/media/download/{mediaId}`` (signed, a
``multipart/mixed`` answer, or a ``Location`` to follow); if the origin does not know that
endpoint, its legacy ``/_matrix/media/v3/download/{origin}/{mediaId}?allow_remote=false``.
Every byte goes through the one outbound client (the federation client for the origin,
the general one for a ``Location``), so the IP guard applies to each hop.  The body is
written to ``tmp/`` as it arrives, hashed on the way and cut off past ``max_upload_size``;
on any failure the partial file is deleted before the error is raised.

Errors, as the client who asked sees them: the origin's 404 is 404 M_NOT_FOUND, its 504
M_NOT_YET_UPLOADED passes through, a file over ``max_upload_size`` is 413 M_TOO_LARGE, a
denied destination 403 M_FORBIDDEN, and anything else (unreachable, a malformed or cut-off
body) 502 M_UNKNOWN.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

from federation.media_multipart import MultipartError, MultipartReader, boundary_of
from federation.transport.client import (
    FederationClient,
    FederationDeniedError,
    FederationRequestError,
    federation_path,
)
from homeserver.errors import MatrixError, forbidden, not_found, too_large
from homeserver.handlers.media.filestore import FileSink, MediaFileStore
from homeserver.handlers.media.sources import FetchedMedia, not_yet_uploaded
from homeserver.outbound.client import (
    BlockedDestinationError,
    OutboundHttpClient,
    OutboundRequestError,
    OutboundResponse,
    ResponseTooLargeError,
)
from homeserver.server import Server

logger = logging.getLogger(__name__)

FEDERATION_DOWNLOAD = "/_matrix/federation/v1/media/download/{}"
LEGACY_DOWNLOAD = "/_matrix/media/v3/download/{}/{}"
ENVELOPE_ALLOWANCE = 64 * 1024  # the multipart headers and metadata around the file
MAX_REDIRECTS = 5
_MEDIA_TYPE = re.compile(r"^[\x20-\x7e]{1,255}$")
_FILENAME_STAR = re.compile(r"filename\*\s*=\s*utf-8''([^;\s]+)", re.IGNORECASE)
_FILENAME = re.compile(r"""filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))""", re.IGNORECASE)


def bad_gateway(message: str) -> MatrixError:
    return MatrixError(502, "M_UNKNOWN", message)


class _Unsupported(Exception):
    """The origin does not serve the federation media endpoint: try the legacy one."""


def clean_media_type(value: str | None) -> str:
    value = (value or "").strip()
    return value if _MEDIA_TYPE.match(value) else "application/octet-stream"


def file_name_of(disposition: str | None) -> str | None:
    """The file name a Content-Disposition gives, if it is a plain name (never a path)."""
    if not disposition:
        return None
    name: str | None = None
    star = _FILENAME_STAR.search(disposition)
    if star is not None:
        name = unquote(star.group(1), errors="replace")
    else:
        plain = _FILENAME.search(disposition)
        if plain is not None:
            name = plain.group(1).replace('\\"', '"') if plain.group(1) is not None else plain.group(2)
    if not name or len(name) > 255 or any(c in name for c in "/\\") or any(ord(c) < 0x20 or c == "\x7f"
                                                                          for c in name):
        return None
    return name


class FederationMediaFetcher:
    def __init__(self, hs: Server) -> None:
        self.client = hs.get(FederationClient)
        self.http = hs.get(OutboundHttpClient)
        self.tmp_dir = hs.get(MediaFileStore).tmp_dir
        self.max_size = int(hs.config.max_upload_size)

    async def fetch(self, origin: str, media_id: str, timeout_ms: int) -> FetchedMedia:
        timeout_s = timeout_ms / 1000 + 30
        try:
            try:
                return await self._federation(origin, media_id, timeout_ms, timeout_s)
            except _Unsupported:
                return await self._legacy(origin, media_id, timeout_ms, timeout_s)
        except FederationDeniedError:
            raise forbidden(f"This server may not fetch media from {origin}") from None
        except BlockedDestinationError:
            raise forbidden("The media's location is an address this server may not reach") from None
        except ResponseTooLargeError:
            raise too_large(f"The remote media is larger than this server's limit of {self.max_size} bytes") from None
        except (FederationRequestError, OutboundRequestError) as exc:
            logger.info("fetching mxc://%s/%s failed: %s", origin, media_id, exc)
            raise bad_gateway(f"Failed to fetch the media from {origin}") from None
        except MultipartError as exc:
            logger.info("mxc://%s/%s: malformed multipart answer: %s", origin, media_id, exc)
            raise bad_gateway(f"{origin} sent a malformed media response: {exc}") from None

    async def _federation(self, origin: str, media_id: str, timeout_ms: int, timeout_s: float) -> FetchedMedia:
        response = await self.client.request("GET", origin, federation_path(FEDERATION_DOWNLOAD, media_id),
                                              args={"timeout_ms": timeout_ms}, timeout_s=timeout_s,
                                              max_response_bytes=self.max_size + ENVELOPE_ALLOWANCE)
        if response.code != 200:
            await self._refuse(origin, response, fallback=True)
        try:
            boundary = boundary_of(response.header("Content-Type"))
        except MultipartError:
            response.discard()  # an unread body would hold its connection open
            raise
        reader_sink = FileSink(self.tmp_dir, self.max_size)
        try:
            reader = MultipartReader(boundary, reader_sink.write)
            await response.stream_to(reader.feed)
            part = reader.finish()
        except BaseException:
            reader_sink.discard()
            raise
        if part.location is None:
            return FetchedMedia(reader_sink.done(), clean_media_type(part.content_type),
                                file_name_of(part.content_disposition))
        reader_sink.discard()
        return await self._follow(part.location, file_name_of(part.content_disposition), timeout_s)

    async def _follow(self, location: str, upload_name: str | None, timeout_s: float) -> FetchedMedia:
        """The media part named a URL: fetch it (unsigned, through the general client and its IP guard)."""
        response = await self.http.request("GET", location, timeout_s=timeout_s, follow_redirects=MAX_REDIRECTS,
                                           max_response_bytes=self.max_size)
        if response.code != 200:
            response.discard()
            raise bad_gateway(f"The media's location answered {response.code}")
        return await self._body(response, upload_name)

    async def _legacy(self, origin: str, media_id: str, timeout_ms: int, timeout_s: float) -> FetchedMedia:
        args: dict[str, str | int] = {"allow_remote": "false", "timeout_ms": timeout_ms, "allow_redirect": "true"}
        response = await self.client.request("GET", origin, federation_path(LEGACY_DOWNLOAD, origin, media_id),
                                              args=args, timeout_s=timeout_s, max_response_bytes=self.max_size)
        location = response.header("Location")
        if response.code in (301, 302, 303, 307, 308) and location:
            response.discard()
            return await self._follow(location, None, timeout_s)
        if response.code != 200:
            await self._refuse(origin, response, fallback=False)
        return await self._body(response, file_name_of(response.header("Content-Disposition")))

    async def _body(self, response: OutboundResponse, upload_name: str | None) -> FetchedMedia:
        sink = FileSink(self.tmp_dir, self.max_size)
        try:
            await response.stream_to(sink.write)
        except BaseException:
            sink.discard()
            raise
        name = upload_name or file_name_of(response.header("Content-Disposition"))
        return FetchedMedia(sink.done(), clean_media_type(response.header("Content-Type")), name)

    async def _refuse(self, origin: str, response: OutboundResponse, fallback: bool) -> None:
        """Turn the origin's error answer into ours (or _Unsupported, to try the legacy endpoint)."""
        try:
            body = await response.json(max_bytes=64 * 1024)
        except OutboundRequestError:
            body = None
        errcode = body.get("errcode") if isinstance(body, dict) else None
        if fallback and (errcode == "M_UNRECOGNIZED" or (errcode is None and response.code in (400, 404, 405, 501))):
            raise _Unsupported()
        if response.code == 404:
            raise not_found(f"{origin} has no such media")
        if errcode == "M_NOT_YET_UPLOADED":
            raise not_yet_uploaded()
        if errcode == "M_TOO_LARGE" or response.code == 413:
            raise too_large(f"{origin} says the media is too large")
        raise bad_gateway(f"{origin} answered {response.code} for the media")
