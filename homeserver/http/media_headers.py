"""How a piece of media is labelled on the wire: its Content-Type and Content-Disposition.

Shared by the client media API and the federation media API (whose multipart body carries
the same headers on its media part).
"""

from __future__ import annotations

import re
from urllib.parse import quote

# What a browser may show in place (the spec's "serving inline content" list; no SVG, no HTML).
INLINE_TYPES = frozenset({
    "text/css", "text/plain", "text/csv", "application/json", "application/ld+json",
    "image/jpeg", "image/gif", "image/png", "image/apng", "image/webp", "image/avif",
    "video/mp4", "video/webm", "video/ogg", "video/quicktime",
    "audio/mp4", "audio/webm", "audio/aac", "audio/mpeg", "audio/ogg", "audio/wave", "audio/wav",
    "audio/x-wav", "audio/x-pn-wav", "audio/flac", "audio/x-flac",
})
# Text types served with "; charset=UTF-8" when the upload named no charset.
TEXT_TYPES = frozenset({
    "text/css", "text/csv", "text/html", "text/calendar", "text/plain", "text/javascript", "text/xml",
    "application/json", "application/ld+json", "application/rtf", "image/svg+xml",
})
# RFC 2616 token characters: a filename made only of these needs no quoting.
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def media_base_type(media_type: str) -> str:
    return media_type.split(";", 1)[0].strip().lower()


def content_disposition(media_type: str, file_name: str | None, inline: bool | None = None) -> bytes:
    """``inline`` only for types safe to render, ``attachment`` otherwise; RFC 6266 for non-token names."""
    if inline is None:
        inline = media_base_type(media_type) in INLINE_TYPES
    disposition = "inline" if inline else "attachment"
    if file_name:
        if _TOKEN.match(file_name):
            disposition += f"; filename={file_name}"
        else:
            disposition += f"; filename*=utf-8''{quote(file_name, safe='')}"
    return disposition.encode("ascii")


def served_content_type(media_type: str) -> bytes:
    if media_base_type(media_type) in TEXT_TYPES and "charset" not in media_type.lower():
        media_type += "; charset=UTF-8"
    return media_type.encode("ascii", "replace")
