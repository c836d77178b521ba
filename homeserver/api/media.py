"""The content repository: ``/_matrix/client/v1/media/*`` (authenticated), ``/_matrix/media/*``.

Uploads (``POST .../upload``, ``PUT .../upload/{serverName}/{mediaId}``) are spooled to disk
as they arrive and bounded by ``max_upload_size``; downloads are streamed from disk.  Every
answer here, errors included, carries the sandboxing headers, so a browser that opens a
media URL directly never runs what is in it.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from twisted.web.server import Request

from homeserver.errors import invalid_param, not_found, unrecognized
from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.media.filestore import MediaFileStore
from homeserver.handlers.media.repository import (
    DEFAULT_TIMEOUT_MS,
    MAX_TIMEOUT_MS,
    MediaDownload,
    MediaRepository,
)
from homeserver.handlers.media.url_previews import UrlPreviewer
from homeserver.http.auth import get_user_by_req
from homeserver.http.media_headers import content_disposition, served_content_type
from homeserver.http.request import query_bool, query_int, query_str
from homeserver.http.resource import FileResponse
from homeserver.http.router import Handler, Router
from homeserver.http.streaming import SpoolSpec, spooled_body
from homeserver.server import Server

RESOURCES = ("client", "media")

CLIENT_V1 = "/_matrix/client/v1/media"
LEGACY_PREFIXES = ("/_matrix/media/r0", "/_matrix/media/v1", "/_matrix/media/v3")

SECURITY_HEADERS = {
    b"Content-Security-Policy": b"sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf;"
                                b" style-src 'unsafe-inline'; media-src 'self'; object-src 'self';",
    b"X-Content-Security-Policy": b"sandbox;",
    b"X-Content-Type-Options": b"nosniff",
    b"Cross-Origin-Resource-Policy": b"cross-origin",
    b"Referrer-Policy": b"no-referrer",
}
_CONTENT_TYPE = re.compile(r"^[\x20-\x7e]{1,255}$")
MAX_FILENAME_LENGTH = 255


def file_response(download: MediaDownload, disposition: bytes) -> FileResponse:
    return FileResponse(download.file, download.length, served_content_type(download.media_type), {
        b"Content-Disposition": disposition,
        b"Cache-Control": b"public, max-age=86400, s-maxage=0, proxy-revalidate",
        b"X-Robots-Tag": b"noindex, nofollow, noarchive, noimageindex",
    })


def check_file_name(name: str | None, what: str) -> str | None:
    """A file name as a client gives it: never a path, never control characters."""
    if not name:
        return None
    if len(name) > MAX_FILENAME_LENGTH or any(c in name for c in "/\\") or any(ord(c) < 0x20 or c == "\x7f"
                                                                             for c in name):
        raise invalid_param(f"{what} must be a plain file name of at most {MAX_FILENAME_LENGTH} characters,"
                            " without slashes or control characters")
    return name


def upload_content_type(request: Request) -> str:
    values = request.requestHeaders.getRawHeaders(b"content-type")
    raw = values[0].decode("latin-1").strip() if values else ""
    if not raw:
        return "application/octet-stream"
    if not _CONTENT_TYPE.match(raw):
        raise invalid_param("Content-Type must be printable ASCII, at most 255 characters")
    return raw


def timeout_ms(request: Request) -> int:
    return query_int(request, "timeout_ms", default=DEFAULT_TIMEOUT_MS, minimum=0, maximum=MAX_TIMEOUT_MS) or 0


def sandboxed(handler: Handler) -> Handler:
    """Set the security headers before the handler runs, so error answers carry them too."""
    @functools.wraps(handler)
    async def wrapped(request: Request, **params: str) -> tuple[int, Any]:
        for name, value in SECURITY_HEADERS.items():
            request.setHeader(name, value)
        return await handler(request, **params)

    return wrapped


def register_routes(router: Router, hs: Server) -> None:
    repository = hs.get(MediaRepository)
    previewer = hs.get(UrlPreviewer)
    auth = hs.get(Auth)
    upload_spool = SpoolSpec(hs.get(MediaFileStore).tmp_dir, int(hs.config.max_upload_size))

    def add(method: str, paths: list[str], handler: Handler, spool: SpoolSpec | None = None) -> None:
        router.add(method, paths, sandboxed(handler), spool=spool)

    def legacy(suffix: str) -> list[str]:
        return [prefix + suffix for prefix in LEGACY_PREFIXES]

    async def media_config(request: Request) -> tuple[int, Any]:
        await get_user_by_req(request, auth, allow_guest=True)
        return 200, repository.media_config()

    async def upload(request: Request) -> tuple[int, Any]:
        requester = await get_user_by_req(request, auth)
        media_type = upload_content_type(request)
        name = check_file_name(query_str(request, "filename"), "filename")
        uri = await repository.upload(requester.user_id, spooled_body(request), media_type, name)
        return 200, {"content_uri": uri}

    async def create(request: Request) -> tuple[int, Any]:
        requester = await get_user_by_req(request, auth)
        uri, expires_at = await repository.create(requester.user_id)
        return 200, {"content_uri": uri, "unused_expires_at": expires_at}

    async def upload_to(request: Request, serverName: str, mediaId: str) -> tuple[int, Any]:  # noqa: N803
        requester = await get_user_by_req(request, auth)
        media_type = upload_content_type(request)
        name = check_file_name(query_str(request, "filename"), "filename")
        await repository.upload_to(requester.user_id, serverName, mediaId, spooled_body(request), media_type, name)
        return 200, {}

    async def download(request: Request, serverName: str, mediaId: str,  # noqa: N803
                       fileName: str | None = None, authenticated: bool = True) -> tuple[int, Any]:  # noqa: N803
        if authenticated:
            await get_user_by_req(request, auth, allow_guest=True)
        elif not query_bool(request, "allow_remote", True) and serverName != hs.server_name:
            raise not_found("Remote media is not served when allow_remote is false")
        name = check_file_name(fileName, "the file name")
        found = await repository.download(serverName, mediaId, timeout_ms(request), authenticated)
        return 200, file_response(found, content_disposition(found.media_type, name or found.upload_name))

    async def thumbnail(request: Request, serverName: str, mediaId: str,  # noqa: N803
                        authenticated: bool = True) -> tuple[int, Any]:
        if authenticated:
            await get_user_by_req(request, auth, allow_guest=True)
        width = query_int(request, "width", required=True, minimum=1)
        height = query_int(request, "height", required=True, minimum=1)
        method = query_str(request, "method", "scale")
        if method not in ("crop", "scale"):
            raise invalid_param("method must be crop or scale")
        animated = query_bool(request, "animated", False)
        assert width is not None and height is not None
        found = await repository.thumbnail(serverName, mediaId, width, height, method, animated,
                                           timeout_ms(request), authenticated)
        name = f"thumbnail.{found.media_type.split('/')[1]}"
        return 200, file_response(found, content_disposition(found.media_type, name, inline=True))

    async def preview_url(request: Request) -> tuple[int, Any]:
        requester = await get_user_by_req(request, auth)
        if not previewer.enabled:
            raise unrecognized(404, "URL previews are disabled on this server")  # as Synapse
        url = query_str(request, "url", required=True)
        assert url is not None
        return 200, await previewer.preview(requester.user_id, url)

    def unauthenticated(handler: Handler) -> Handler:
        return functools.partial(handler, authenticated=False)

    add("GET", [f"{CLIENT_V1}/config", *legacy("/config")], media_config)
    add("GET", [f"{CLIENT_V1}/preview_url", *legacy("/preview_url")], preview_url)
    add("GET", [f"{CLIENT_V1}/download/{{serverName}}/{{mediaId}}",
                f"{CLIENT_V1}/download/{{serverName}}/{{mediaId}}/{{fileName}}"], download)
    add("GET", [f"{CLIENT_V1}/thumbnail/{{serverName}}/{{mediaId}}"], thumbnail)
    add("GET", legacy("/download/{serverName}/{mediaId}") + legacy("/download/{serverName}/{mediaId}/{fileName}"),
        unauthenticated(download))
    add("GET", legacy("/thumbnail/{serverName}/{mediaId}"), unauthenticated(thumbnail))
    add("POST", legacy("/upload"), upload, spool=upload_spool)
    add("PUT", ["/_matrix/media/v3/upload/{serverName}/{mediaId}"], upload_to, spool=upload_spool)
    add("POST", ["/_matrix/media/v1/create"], create)
