"""The ``multipart/mixed`` body of ``/_matrix/federation/v1/media/{download,thumbnail}``.

The spec's shape: exactly two parts, first a JSON object of metadata (empty today), then
either the media bytes (with their Content-Type and Content-Disposition) or a ``Location``
header naming where to get them.  ``envelope()`` gives the bytes around a file so the file
itself can be streamed from disk; ``MultipartReader`` parses an arriving body chunk by
chunk, handing the media bytes on as they come (never holding the whole part), and raises
``MultipartError`` at the first thing that does not fit the shape.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable

import attrs

MAX_HEADER_BYTES = 16 * 1024
MAX_JSON_BYTES = 64 * 1024
_BOUNDARY = re.compile(r"""boundary=(?:"([^"]{1,70})"|([0-9A-Za-z'()+_,\-./:=?]{1,70}))""", re.IGNORECASE)


class MultipartError(Exception):
    """The body is not the two-part multipart/mixed the spec describes."""


def new_boundary() -> str:
    return secrets.token_hex(16)


def envelope(boundary: str, media_headers: dict[str, str]) -> tuple[bytes, bytes]:
    """(the bytes before the media, the bytes after it), the metadata part being ``{}``."""
    dash = f"--{boundary}".encode("ascii")
    head = [dash, b"Content-Type: application/json", b"", b"{}", dash]
    head += [f"{name}: {value}".encode("latin-1") for name, value in media_headers.items()]
    prefix = b"\r\n".join([*head, b"", b""])
    return prefix, b"\r\n" + dash + b"--\r\n"


def boundary_of(content_type: str | None) -> str:
    """The boundary of a ``multipart/mixed`` Content-Type; MultipartError for any other type."""
    if not content_type or content_type.split(";", 1)[0].strip().lower() != "multipart/mixed":
        raise MultipartError(f"expected multipart/mixed, got {content_type or 'no Content-Type'}")
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise MultipartError("multipart/mixed without a usable boundary")
    return match.group(1) or match.group(2)


@attrs.define
class MediaPart:
    """What the second part said about itself (its bytes went to the writer)."""

    content_type: str | None = None
    content_disposition: str | None = None
    location: str | None = None


def _parse_headers(raw: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in raw.split(b"\r\n"):
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep or not name.strip():
            raise MultipartError("malformed part header")
        headers[name.strip().decode("latin-1").lower()] = value.strip().decode("latin-1")
    return headers


class MultipartReader:
    """Feed it the body with ``feed()``; ``finish()`` checks it ended properly.

    States: the preamble up to the first delimiter, the metadata part's headers and JSON,
    then the media part's headers and bytes (streamed to ``write``), then the close delimiter.
    """

    def __init__(self, boundary: str, write: Callable[[bytes], object]) -> None:
        self.delimiter = b"\r\n--" + boundary.encode("ascii")
        self.write = write
        self.buffer = b"\r\n"  # so a delimiter at the very start matches like any other
        self.state = "preamble"
        self.metadata: object = None
        self.media = MediaPart()
        self.media_bytes = 0

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while self._step():
            pass
        if self.state in ("preamble", "epilogue") and len(self.buffer) > MAX_HEADER_BYTES:
            raise MultipartError("too much outside the parts")

    def _step(self) -> bool:
        """Advance one state if the buffer allows it; False when more data is needed."""
        if self.state == "preamble":
            at = self.buffer.find(self.delimiter + b"\r\n")
            if at < 0:
                return False
            self.buffer = self.buffer[at + len(self.delimiter) + 2:]
            self.state = "json_headers"
            return True
        if self.state in ("json_headers", "media_headers"):
            return self._headers()
        if self.state == "json":
            return self._json()
        if self.state == "media":
            return self._media()
        if self.state == "close":
            if len(self.buffer) < 2:
                return False
            if not self.buffer.startswith(b"--"):
                raise MultipartError("more than two parts")
            self.buffer = b""
            self.state = "epilogue"
            return False
        self.buffer = b""  # the epilogue is ignored
        return False

    def _headers(self) -> bool:
        if self.buffer.startswith(b"\r\n"):
            end = -2  # a part with no headers at all
        else:
            end = self.buffer.find(b"\r\n\r\n")
        if end == -1:
            if len(self.buffer) > MAX_HEADER_BYTES:
                raise MultipartError("part headers too long")
            return False
        headers = _parse_headers(self.buffer[:max(end, 0)])
        self.buffer = self.buffer[end + 4:]
        if self.state == "json_headers":
            content_type = headers.get("content-type", "")
            if content_type.split(";", 1)[0].strip().lower() != "application/json":
                raise MultipartError("the first part is not application/json")
            self.state = "json"
        else:
            self.media = MediaPart(headers.get("content-type"), headers.get("content-disposition"),
                                   headers.get("location"))
            self.state = "media"
        return True

    def _json(self) -> bool:
        at = self.buffer.find(self.delimiter)
        if at < 0:
            if len(self.buffer) > MAX_JSON_BYTES:
                raise MultipartError("the metadata part is too long")
            return False
        after = at + len(self.delimiter)
        if len(self.buffer) < after + 2:
            return False
        try:
            self.metadata = json.loads(self.buffer[:at].decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise MultipartError("the metadata part is not JSON") from None
        if not isinstance(self.metadata, dict):
            raise MultipartError("the metadata part is not a JSON object")
        if self.buffer[after:after + 2] != b"\r\n":
            raise MultipartError("the body ends after the metadata part")
        self.buffer = self.buffer[after + 2:]
        self.state = "media_headers"
        return True

    def _media(self) -> bool:
        at = self.buffer.find(self.delimiter)
        if at < 0:
            # Everything but a tail that might be the start of the delimiter can go out now.
            keep = len(self.delimiter) - 1
            if len(self.buffer) > keep:
                self._emit(self.buffer[:-keep])
                self.buffer = self.buffer[-keep:]
            return False
        self._emit(self.buffer[:at])
        self.buffer = self.buffer[at + len(self.delimiter):]
        self.state = "close"
        return True

    def _emit(self, data: bytes) -> None:
        if data:
            self.media_bytes += len(data)
            self.write(data)

    def finish(self) -> MediaPart:
        """The media part's headers; MultipartError if the body stopped before its end."""
        if self.state == "close":
            self._step()
        if self.state != "epilogue":
            raise MultipartError(f"the body ended early (in {self.state.replace('_', ' ')})")
        return self.media
