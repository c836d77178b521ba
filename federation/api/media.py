"""``/_matrix/federation/v1/media/{download,thumbnail}/{mediaId}``: our media, for other servers.

Signed requests only (X-Matrix, like every federation endpoint), and only media uploaded
here: the media ID is ours, the server name implied.  The answer is the spec's
``multipart/mixed``: an empty JSON metadata part, then the file, streamed from disk.
"""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from federation.media_multipart import envelope, new_boundary
from federation.transport.auth import FederationAuth
from homeserver.errors import invalid_param
from homeserver.handlers.media.repository import (
    DEFAULT_TIMEOUT_MS,
    MAX_TIMEOUT_MS,
    MediaDownload,
    MediaRepository,
)
from homeserver.http.media_headers import content_disposition, served_content_type
from homeserver.http.request import query_bool, query_int, query_str
from homeserver.http.router import Router
from homeserver.http.streaming import FileResponse
from homeserver.server import Server

RESOURCES = ("federation",)
PREFIX = "/_matrix/federation/v1/media"


def multipart_response(download: MediaDownload, disposition: bytes) -> FileResponse:
    boundary = new_boundary()
    prefix, suffix = envelope(boundary, {
        "Content-Type": served_content_type(download.media_type).decode("ascii"),
        "Content-Disposition": disposition.decode("ascii"),
    })
    return FileResponse(download.file, download.length, f"multipart/mixed; boundary={boundary}".encode("ascii"),
                        prefix=prefix, suffix=suffix)


def _timeout_ms(request: Request) -> int:
    return query_int(request, "timeout_ms", default=DEFAULT_TIMEOUT_MS, minimum=0, maximum=MAX_TIMEOUT_MS) or 0


def register_routes(router: Router, hs: Server) -> None:
    repository = hs.get(MediaRepository)
    auth = hs.get(FederationAuth)

    async def download(request: Request, mediaId: str) -> tuple[int, Any]:  # noqa: N803
        await auth.authenticate(request)
        found = await repository.download(hs.server_name, mediaId, _timeout_ms(request), authenticated=True)
        return 200, multipart_response(found, content_disposition(found.media_type, found.upload_name))

    async def thumbnail(request: Request, mediaId: str) -> tuple[int, Any]:  # noqa: N803
        await auth.authenticate(request)
        width = query_int(request, "width", required=True, minimum=1)
        height = query_int(request, "height", required=True, minimum=1)
        method = query_str(request, "method", "scale")
        if method not in ("crop", "scale"):
            raise invalid_param("method must be crop or scale")
        animated = query_bool(request, "animated", False)
        assert width is not None and height is not None
        found = await repository.thumbnail(hs.server_name, mediaId, width, height, method, animated,
                                           _timeout_ms(request), authenticated=True)
        name = f"thumbnail.{found.media_type.split('/')[1]}"
        return 200, multipart_response(found, content_disposition(found.media_type, name, inline=True))

    router.add("GET", f"{PREFIX}/download/{{mediaId}}", download)
    router.add("GET", f"{PREFIX}/thumbnail/{{mediaId}}", thumbnail)
