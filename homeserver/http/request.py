"""Reading what a client sent: JSON bodies and query parameters, with Matrix errors."""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections.abc import Callable
from typing import Any, Literal, overload

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.web.server import Request

from homeserver.errors import (
    MatrixError,
    bad_json,
    invalid_param,
    missing_param,
    not_json,
    too_large,
)
from homeserver.http.streaming import BodySpool, SpoolSpec

access_log = logging.getLogger("homeserver.access")

SpoolLookup = Callable[[str, str], SpoolSpec | None]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# An escaped U+0000 ("\u0000" preceded by an even number of backslashes).
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
# What may be an escaped UTF-16 surrogate: the only way JSON text can carry an unpaired
# one, since raw surrogates are not valid UTF-8. Most such escapes are pairs (emoji from
# clients that escape non-ASCII), so a match only means the decoded value needs a look.
_MAYBE_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
# A surrogate code point left in a decoded string: escaped pairs decode to one character.
_SURROGATE = re.compile("[\ud800-\udfff]")


#: One decoder for every body: ``json.loads`` with an argument builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
#: Inline filter text -> its decoded value, shared by every request that sends the same text
#: (a long-polling client repeats its filter on each /sync; the sync core keeps what it parsed
#: from the filter by the value's identity). Read only, like every parsed filter.
_INLINE_FILTERS: dict[str, dict[str, Any]] = {}
_MAX_INLINE_FILTERS = 1_000


def parse_json(raw: bytes) -> Any:
    """Decode strict JSON (no NaN/Infinity), raising M_NOT_JSON.

    Strings holding U+0000 or an unpaired UTF-16 surrogate are refused (M_BAD_JSON):
    no Matrix field needs them, PostgreSQL cannot store U+0000 in a text column, and
    a lone surrogate cannot be written back out as UTF-8 to whoever reads it later.
    """
    try:
        value = _DECODER.decode(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise not_json() from None
    if _ESCAPED_NUL.search(raw):
        raise bad_json("Strings may not contain U+0000")
    if _MAYBE_ESCAPED_SURROGATE.search(raw) and has_lone_surrogate(value):
        raise bad_json("Strings may not contain unpaired UTF-16 surrogates")
    return value


def has_lone_surrogate(value: Any) -> bool:
    """Does any string in a decoded JSON value (keys included) hold a surrogate code point?

    Iterative, so a value as deep as the JSON decoder allows cannot exhaust the stack.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


DEFAULT_MAX_JSON_BODY = 10 * 1024 * 1024
# How long a connection refused for its size keeps reading (and dropping) the body.
LINGER_AFTER_EARLY_REFUSAL_S = 5.0
# Headers every response carries, including one written before the request reaches a resource.
CORS_HEADERS = {
    b"Access-Control-Allow-Origin": b"*",
    b"Access-Control-Allow-Methods": b"GET, HEAD, POST, PUT, DELETE, OPTIONS",
    b"Access-Control-Allow-Headers": b"X-Requested-With, Content-Type, Authorization, Date",
    b"Access-Control-Expose-Headers": b"Synapse-Trace-Id, Server",
}


class BoundedRequest(Request):
    """A request that stops buffering its body past the site's limit.

    Twisted would otherwise spool any body, however large, before our code
    sees it.  ``max_content`` is set per site from the config, and so is
    ``trust_forwarded_for`` (the listener's ``x_forwarded``): behind a reverse
    proxy the client's address comes from X-Forwarded-For.  ``spool_for``
    names the routes whose bodies go to disk as they arrive (uploads), so
    they are bounded by their own limit, not by ``max_content``.
    """

    max_content: int = DEFAULT_MAX_JSON_BODY
    max_json_body: int = DEFAULT_MAX_JSON_BODY
    trust_forwarded_for: bool = False
    spool_for: SpoolLookup | None = None

    def getClientAddress(self) -> Any:
        address = super().getClientAddress()
        if not self.trust_forwarded_for:
            return address
        forwarded = self.getHeader("x-forwarded-for")
        if not forwarded:
            return address
        client = forwarded.split(",")[0].strip()
        try:
            version = ipaddress.ip_address(client).version
        except ValueError:
            return address
        kind = IPv4Address if version == 4 else IPv6Address
        return kind("TCP", client, 0)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received_bytes = 0
        self.content_too_large = False
        self.refused_early = False

    def gotLength(self, length: int | None) -> None:
        """Called by the channel once the headers are in, before any of the body is read.

        A declared Content-Length over the route's limit is answered 413 at once, before
        authentication, instead of reading the body only to throw it away. Upload
        routes spool their body to disk as it arrives.
        """
        raw_path = getattr(self.channel, "_path", b"").split(b"?", 1)[0]
        spec = self._spool_spec()
        limit = self.max_content if spec is None else spec.max_size
        if length is None or length <= limit:
            if spec is None:
                super().gotLength(length)
                return
            self._parsePOSTFormSubmission = False  # a spooled body is never parsed as a form
            self.content = BodySpool(spec, length)
            return
        super().gotLength(0)
        self.content_too_large = self.refused_early = True
        # The channel answers "Expect: 100-continue" right after this; the client must
        # not be told to go on after it has been refused.
        self.requestHeaders.removeHeader(b"expect")
        refuse_early(self.channel, limit)
        access_log.info("%s %s %s 413 (Content-Length %d refused before reading the body)",
                        getattr(self.client, "host", "-"),
                        getattr(self.channel, "_command", b"-").decode("ascii", "replace"),
                        raw_path.decode("ascii", "replace"), length)

    def _spool_spec(self) -> SpoolSpec | None:
        lookup = type(self).spool_for
        # The request line is on the channel until the body is in (Twisted's HTTP/1.x channel).
        method, uri = getattr(self.channel, "_command", None), getattr(self.channel, "_path", None)
        if lookup is None or not isinstance(method, bytes) or not isinstance(uri, bytes):
            return None
        path = uri.split(b"?", 1)[0].decode("ascii", "replace")
        return lookup(method.decode("ascii", "replace").upper(), path)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if self.refused_early:
            return  # answered in gotLength; the body that followed was discarded
        super().requestReceived(command, path, version)

    def handleContentChunk(self, data: bytes) -> None:
        if isinstance(self.content, BodySpool):
            self.content.write(data)
            return
        self.received_bytes += len(data)
        if self.refused_early or self.received_bytes > self.max_content:
            self.content_too_large = True
            return
        super().handleContentChunk(data)


def refuse_early(channel: Any, limit: int) -> None:
    """Write a 413 straight to the connection and close it once the client has had time to read it.

    Closing while the client is still sending would reset the connection and lose the
    response, so the rest of the body is read and dropped (never stored) for a few
    seconds first.
    """
    body = json.dumps(too_large(f"Request body is larger than {limit} bytes").to_json()).encode()
    headers = [b"HTTP/1.1 413 Request Entity Too Large", b"Content-Type: application/json",
               b"Content-Length: " + str(len(body)).encode(), b"Connection: close",
               *(name + b": " + value for name, value in CORS_HEADERS.items())]
    transport = channel.transport
    transport.write(b"\r\n".join(headers) + b"\r\n\r\n" + body)
    channel.persistent = False
    half_close = getattr(transport, "loseWriteConnection", None)
    if half_close is None:
        channel.loseConnection()
        return
    half_close()
    reactor = getattr(channel, "callLater", None)
    if reactor is not None:
        reactor(LINGER_AFTER_EARLY_REFUSAL_S, transport.abortConnection)


def bounded_request_factory(max_content: int, max_json_body: int, trust_forwarded_for: bool = False,
                            spool_for: SpoolLookup | None = None) -> type[BoundedRequest]:
    return type("SiteRequest", (BoundedRequest,), {
        "max_content": max_content, "max_json_body": max_json_body, "trust_forwarded_for": trust_forwarded_for,
        "spool_for": staticmethod(spool_for) if spool_for is not None else None,
    })


def read_body(request: Request, max_size: int | None = None) -> bytes:
    """The raw body, refusing anything over ``max_size`` (default: the site's JSON limit)."""
    if max_size is None:
        max_size = getattr(request, "max_json_body", DEFAULT_MAX_JSON_BODY)
    if getattr(request, "content_too_large", False):
        raise too_large(f"Request body is larger than {max_size} bytes")
    declared = request.getHeader("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_size:
        raise too_large(f"Request body is larger than {max_size} bytes")
    content = request.content
    if content is None:
        return b""
    content.seek(0)
    raw = content.read(max_size + 1)
    if len(raw) > max_size:
        raise too_large(f"Request body is larger than {max_size} bytes")
    return raw


def parse_json_object(request: Request, max_size: int | None = None, allow_empty: bool = False) -> dict[str, Any]:
    """The request body as a JSON object.

    ``allow_empty`` treats a missing body as ``{}``, as some endpoints (leave,
    logout) are called with no body by real clients.
    """
    raw = read_body(request, max_size)
    if allow_empty and not raw.strip():
        return {}
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise not_json("Content must be a JSON object.")
    return body


@overload
def query_str(request: Request, name: str, default: str | None = None, *,
              required: Literal[True]) -> str: ...
@overload
def query_str(request: Request, name: str, default: str | None = None,
              required: bool = False) -> str | None: ...
def query_str(request: Request, name: str, default: str | None = None, required: bool = False) -> str | None:
    values = request.args.get(name.encode())
    if not values:
        if required:
            raise missing_param(name)
        return default
    try:
        text = values[0].decode("utf-8")
    except UnicodeDecodeError:
        raise invalid_param(f"{name} is not UTF-8") from None
    if "\x00" in text:
        raise invalid_param(f"{name} may not contain U+0000")
    return text


def query_str_list(request: Request, name: str) -> list[str]:
    """Every value of a repeated query parameter (``?via=a&via=b``), in order."""
    texts = []
    for value in request.args.get(name.encode(), []):
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            raise invalid_param(f"{name} is not UTF-8") from None
        if "\x00" in text:
            raise invalid_param(f"{name} may not contain U+0000")
        texts.append(text)
    return texts


def query_filter(request: Request, name: str = "filter") -> str | dict[str, Any] | None:
    """A filter parameter: inline JSON (decoded by ``parse_json``, like bodies) or a saved filter's ID.

    Decoded here, at the edge, so inline filters get the same refusals as bodies
    (no U+0000, no lone surrogates) and the sync core never parses client text.
    """
    text = query_str(request, name)
    if text is None or not text.lstrip().startswith("{"):
        return text
    known = _INLINE_FILTERS.get(text)
    if known is not None:
        return known
    try:
        value = parse_json(text.encode("utf-8"))
    except MatrixError:
        raise invalid_param(f"{name} is not valid JSON") from None
    assert isinstance(value, dict)  # JSON text starting with "{" is an object
    if len(_INLINE_FILTERS) >= _MAX_INLINE_FILTERS:
        _INLINE_FILTERS.clear()
    _INLINE_FILTERS[text] = value
    return value


@overload
def query_int(request: Request, name: str, default: int, minimum: int | None = None,
              maximum: int | None = None, required: bool = False) -> int: ...
@overload
def query_int(request: Request, name: str, default: None = None, minimum: int | None = None,
              maximum: int | None = None, required: bool = False) -> int | None: ...
def query_int(request: Request, name: str, default: int | None = None, minimum: int | None = None,
              maximum: int | None = None, required: bool = False) -> int | None:
    text = query_str(request, name, required=required)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise invalid_param(f"{name} must be an integer") from None
    if minimum is not None and value < minimum:
        raise invalid_param(f"{name} must be at least {minimum}")
    if maximum is not None and value > maximum:
        value = maximum
    return value


def query_bool(request: Request, name: str, default: bool = False) -> bool:
    text = query_str(request, name)
    if text is None:
        return default
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise invalid_param(f"{name} must be true or false")


def require(body: dict[str, Any], name: str, kind: type | tuple[type, ...], what: str) -> Any:
    """A required body field of the right JSON type."""
    if name not in body:
        raise missing_param(name)
    value = body[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise bad_json(f"{name} must be {what}")
    return value


def optional(body: dict[str, Any], name: str, kind: type | tuple[type, ...], what: str, default: Any = None) -> Any:
    """An optional body field; present-but-wrong-type is M_BAD_JSON."""
    if name not in body or body[name] is None:
        return default
    return require(body, name, kind, what)
