"""Bodies too big to hold in memory: uploads spooled to disk as they arrive, downloads sent from a file.

A route opts in to a spooled body with ``router.add(..., spool=SpoolSpec(...))``.  The
request factory asks the router, as soon as the headers are in, whether the request is
for such a route; if so the body goes chunk by chunk into a temporary file in the spec's
directory (hashed with SHA-256 on the way) instead of Twisted's buffer.  The handler then
``claim()``s the finished file and owns it; an unclaimed spool deletes its file when the
request ends, however it ends (finished, failed, or the client went away mid-body).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping
from typing import IO

import attrs
from twisted.internet.interfaces import IPushProducer
from twisted.web.server import Request
from zope.interface import implementer

from homeserver.errors import too_large
from homeserver.spooled_file import SpooledFile

DOWNLOAD_CHUNK_SIZE = 64 * 1024


@attrs.frozen
class SpoolSpec:
    """Where a route's body is spooled, and the most bytes it may have."""

    directory: str
    max_size: int


class BodySpool:
    """The file-like ``request.content`` of a spooled request (Twisted writes, seeks and tells)."""

    def __init__(self, spec: SpoolSpec, declared_length: int | None) -> None:
        self.max_size = spec.max_size
        self.length = 0
        self.too_large = declared_length is not None and declared_length > spec.max_size
        self._hash = hashlib.sha256()
        self._file: IO[bytes] | None = None
        self.path: str | None = None
        if not self.too_large:
            fd, self.path = tempfile.mkstemp(prefix="upload-", dir=spec.directory)
            self._file = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        if self._file is None:
            return
        self.length += len(data)
        if self.length > self.max_size:
            self.too_large = True
            self._discard()
            return
        self._hash.update(data)
        self._file.write(data)

    def tell(self) -> int:
        return self.length

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.length  # Twisted rewinds before dispatch; nothing reads the spool back

    def read(self, size: int = -1) -> bytes:
        return b""

    def claim(self) -> SpooledFile:
        """Hand the finished file over (flushed, not yet fsynced), or 413 if the body was too big."""
        if self.too_large or self._file is None or self.path is None:
            raise too_large(f"Uploads may be at most {self.max_size} bytes")
        self._file.close()
        self._file = None
        claimed = SpooledFile(self.path, self.length, self._hash.hexdigest())
        self.path = None
        return claimed

    def close(self) -> None:
        """Called by Twisted when the request is done or the connection is lost."""
        self._discard()

    def _discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.path is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            self.path = None


def spooled_body(request: Request) -> SpooledFile:
    """The body of a request to a route registered with a SpoolSpec."""
    content = request.content
    if not isinstance(content, BodySpool):
        raise RuntimeError("spooled_body() on a route registered without a SpoolSpec")
    return content.claim()


@attrs.frozen
class FileResponse:
    """A body streamed from an open file, ``length`` bytes long, closed once sent.

    ``prefix`` and ``suffix`` are small bytes sent around the file (a multipart envelope).
    """

    file: IO[bytes]
    length: int
    content_type: bytes
    headers: Mapping[bytes, bytes] = attrs.field(factory=dict)
    prefix: bytes = b""
    suffix: bytes = b""


@implementer(IPushProducer)
class FileProducer:
    """Writes a file to a request in chunks, pausing while the transport's buffer is full."""

    def __init__(self, request: Request, body: FileResponse) -> None:
        self.request = request
        self.file = body.file
        self.remaining = body.length
        self.prefix = body.prefix
        self.suffix = body.suffix
        self.paused = False
        self.stopped = False

    def start(self) -> None:
        self.request.registerProducer(self, True)
        if self.prefix:
            self.request.write(self.prefix)
        self.resumeProducing()

    def resumeProducing(self) -> None:
        self.paused = False
        while not self.paused and not self.stopped:
            if self.remaining <= 0:
                self._finish()
                return
            chunk = self.file.read(min(DOWNLOAD_CHUNK_SIZE, self.remaining))
            if not chunk:
                # The file shrank under us: the length is already promised, so cut the connection.
                self.stopProducing()
                self.request.loseConnection()
                return
            self.remaining -= len(chunk)
            self.request.write(chunk)

    def pauseProducing(self) -> None:
        self.paused = True

    def stopProducing(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        self.file.close()

    def _finish(self) -> None:
        self.stopProducing()
        self.request.unregisterProducer()
        if self.suffix and not self.request._disconnected:
            self.request.write(self.suffix)
        if not self.request._disconnected and not self.request.finished:
            self.request.finish()


def send_file(request: Request, status: int, body: FileResponse) -> None:
    """Answer with ``body``: headers now, the bytes as the client takes them."""
    if request._disconnected or request.finished:
        body.file.close()
        return
    request.setResponseCode(status)
    for name, value in body.headers.items():
        request.setHeader(name, value)
    request.setHeader(b"Content-Type", body.content_type)
    request.setHeader(b"Content-Length", str(len(body.prefix) + body.length + len(body.suffix)).encode())
    if request.method == b"HEAD":
        body.file.close()
        request.finish()
        return
    FileProducer(request, body).start()
