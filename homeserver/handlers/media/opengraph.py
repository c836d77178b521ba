"""What a web page says about itself: its OpenGraph tags, else its title and description.

Pure parsing (the stdlib's HTML tokenizer, which never fetches or runs anything); the
preview handler does the fetching.  ``og:image`` comes back absolute, for the handler to
download and replace with an mxc:// URI.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin

MAX_TEXT = 500  # characters of a title or description we keep
MAX_TAGS = 50
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]{1,40})""", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


def _clean(text: str) -> str:
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1].rstrip() + "…"


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.og: dict[str, str] = {}
        self.description: str | None = None
        self.title_parts: list[str] = []
        self.paragraph_parts: list[str] = []
        self._in: str | None = None  # "title" or "p" while inside the first of them
        self._seen_title = False
        self._seen_paragraph = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): value or "" for name, value in attrs}
        if tag == "meta":
            key = (values.get("property") or values.get("name") or "").strip().lower()
            content = values.get("content")
            if key.startswith("og:") and content is not None and key not in self.og and len(self.og) < MAX_TAGS:
                self.og[key] = content
            elif key == "description" and content and self.description is None:
                self.description = content
        elif tag == "title" and not self._seen_title:
            self._in = "title"
        elif tag == "p" and not self._seen_paragraph and self._in is None:
            self._in = "p"

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._in == "title":
            self._in, self._seen_title = None, True
        elif tag == "p" and self._in == "p":
            self._in, self._seen_paragraph = None, True

    def handle_data(self, data: str) -> None:
        if self._in == "title":
            self.title_parts.append(data)
        elif self._in == "p":
            self.paragraph_parts.append(data)


def decode_html(body: bytes, charset: str | None) -> str:
    """The page as text: the header's charset, else a <meta charset>, else UTF-8 (never failing)."""
    candidates = [charset] if charset else []
    found = _META_CHARSET.search(body[:4096])
    if found is not None:
        candidates.append(found.group(1).decode("ascii"))
    for candidate in [*candidates, "utf-8"]:
        try:
            return body.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return body.decode("utf-8", "replace")


def parse_page(html: str, base_url: str) -> dict[str, str]:
    """The page's ``og:*`` tags, with ``og:title`` and ``og:description`` filled from the page itself
    when it has none, and ``og:image`` made absolute (dropped unless http or https)."""
    parser = _PageParser()
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):  # the tokenizer's own complaints about broken markup
        pass
    og = {key: _clean(value) for key, value in parser.og.items()}
    if not og.get("og:title"):
        title = _clean("".join(parser.title_parts))
        if title:
            og["og:title"] = title
    if not og.get("og:description"):
        description = _clean(parser.description or "".join(parser.paragraph_parts))
        if description:
            og["og:description"] = description
    image = og.pop("og:image", None) or og.pop("og:image:url", None) or og.pop("og:image:secure_url", None)
    for key in ("og:image:url", "og:image:secure_url"):
        og.pop(key, None)
    if image:
        absolute = urljoin(base_url, image)
        if absolute.startswith(("http://", "https://")):
            og["og:image"] = absolute
    return og
