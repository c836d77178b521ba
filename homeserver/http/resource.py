"""The Twisted resource that serves every JSON API: dispatch, errors, CORS, access log."""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import quote, unquote

import attrs
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from homeserver.errors import MatrixError, invalid_param, unrecognized
from homeserver.http.request import CORS_HEADERS
from homeserver.http.router import Router
from homeserver.http.streaming import FileResponse, send_file
from homeserver.metrics import HTTP_REQUEST_SECONDS, HTTP_REQUESTS, observe_request

access_log = logging.getLogger("homeserver.access")
logger = logging.getLogger(__name__)


@attrs.frozen
class RawResponse:
    """A small non-JSON body held in memory (metrics text, health); files go out as FileResponse."""

    body: bytes
    content_type: bytes


def encode_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# Dicts nested deeper than this with something unencodable inside are dropped whole
# rather than searched, so a pathological value cannot exhaust the stack.
_MAX_PRUNE_DEPTH = 64


def encode_json_dropping_unencodable(value: Any, what: str) -> bytes:
    """``encode_json``, except that a part that cannot be encoded is left out, with a log line.

    For responses that carry many stored values to one reader (sync frames, history):
    a value stored before it could be refused (a lone surrogate) must not hold back
    everything else, on every retry.  The smallest list item or object member holding
    the bad part goes; the common path costs one encode, as ``encode_json``.
    """
    try:
        return encode_json(value)
    except (UnicodeEncodeError, TypeError, ValueError):
        dropped: list[str] = []
        kept = _drop_unencodable(value, "", dropped, 0)
        logger.warning("Left out of %s: %d value(s) that cannot be encoded as JSON, at %s",
                       what, len(dropped), ", ".join(dropped[:10]))
        return encode_json(kept)


def _encodes(value: Any) -> bool:
    try:
        encode_json(value)
    except (UnicodeEncodeError, TypeError, ValueError):
        return False
    return True


def _drop_unencodable(value: Any, path: str, dropped: list[str], depth: int) -> Any:
    if isinstance(value, list):
        kept_items = []
        for index, item in enumerate(value):
            if _encodes(item):
                kept_items.append(item)
            else:
                dropped.append(f"{path}[{index}]")
        return kept_items
    if isinstance(value, dict) and depth < _MAX_PRUNE_DEPTH:
        kept: dict[str, Any] = {}
        for key, item in value.items():
            where = f"{path}.{key!r}" if path else repr(key)
            if not _encodes(key):
                dropped.append(where)
            elif _encodes(item):
                kept[key] = item
            elif isinstance(item, (dict, list)):
                kept[key] = _drop_unencodable(item, where, dropped, depth + 1)
            else:
                dropped.append(where)
        return kept
    dropped.append(path or "the whole value")
    return {} if isinstance(value, dict) else None


def loggable_path(request: Request) -> str:
    """The request path with any access token hidden."""
    uri = request.uri.decode("ascii", "replace")
    path, _, query = uri.partition("?")
    if not query:
        return path
    parts = []
    for item in query.split("&"):
        name, _, _value = item.partition("=")
        parts.append(f"{name}=<redacted>" if unquote(name) == "access_token" else item)
    return f"{path}?{'&'.join(parts)}"


def finish_response(request: Request, status: int, body: bytes, content_type: bytes) -> None:
    """Send a whole response, unless the client has gone or it was already sent."""
    if request._disconnected or request.finished:
        return
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", content_type)
    request.setHeader(b"Content-Length", str(len(body)).encode())
    if request.method != b"HEAD":
        request.write(body)
    request.finish()


def write_error(request: Request, error: MatrixError) -> None:
    """A Matrix error response, with CORS headers so browsers can read it."""
    for name, value in CORS_HEADERS.items():
        request.setHeader(name, value)
    # ASCII-escaped: an error message that quotes the client's input can always be encoded.
    body = json.dumps(error.to_json(), separators=(",", ":")).encode("ascii")
    finish_response(request, error.status, body, b"application/json")


class JsonApiResource(Resource):
    """Dispatches every request under the listener to the router."""

    isLeaf = True

    def __init__(self, router: Router, fallback: Resource | None = None) -> None:
        super().__init__()
        self.router = router
        #: Where requests without a route go instead of a 404/405 (a worker forwards them).
        self.fallback = fallback

    def render(self, request: Request) -> Any:
        request.start_time = time.monotonic()  # type: ignore[attr-defined]
        request.notifyFinish().addBoth(self._log_finished, request)
        for name, value in CORS_HEADERS.items():
            request.setHeader(name, value)
        method = request.method.decode("ascii", "replace")
        path = request.path.decode("ascii", "replace")
        try:
            route, params, path_known = self.router.match(method, path)
        except UnicodeDecodeError:
            self._write_error(request, unrecognized(400, "The path is not valid UTF-8"))
            return NOT_DONE_YET
        if route is None and self.fallback is not None and not (method == "OPTIONS" and path_known):
            return self.fallback.render(request)
        if method == "OPTIONS":
            if path_known:
                request.setResponseCode(204)
                return b""
            self._write_error(request, unrecognized())
            return NOT_DONE_YET
        if route is None:
            error = unrecognized(405, "Method not allowed") if path_known else unrecognized()
            self._write_error(request, error)
            return NOT_DONE_YET
        request.route_name = route.name  # type: ignore[attr-defined]
        if any("\x00" in value for value in params.values()):
            # No Matrix identifier contains U+0000, and PostgreSQL cannot store it in text.
            self._write_error(request, invalid_param("Path parameters may not contain U+0000"))
            return NOT_DONE_YET
        deferred: Deferred[tuple[int, Any]] = Deferred.fromCoroutine(route.handler(request, **params))
        deferred.addCallbacks(self._write_result, self._write_failure, callbackArgs=(request,), errbackArgs=(request,))
        # Whatever goes wrong while answering (a body that cannot be encoded, a bug in the
        # writers themselves) still ends the request: never a client left waiting forever.
        deferred.addErrback(self._writing_failed, request)
        return NOT_DONE_YET

    def _write_result(self, result: tuple[int, Any], request: Request) -> None:
        status, body = result
        if isinstance(body, FileResponse):
            send_file(request, status, body)
        elif isinstance(body, RawResponse):
            self._finish(request, status, body.body, body.content_type)
        else:
            self._finish(request, status, encode_json(body), b"application/json")

    def _writing_failed(self, failure: Failure, request: Request) -> None:
        logger.error("Writing the response to %s %s failed", request.method.decode("ascii", "replace"),
                     loggable_path(request),
                     exc_info=failure.value)
        if request._disconnected or request.finished:
            return
        if request.startedWriting:
            # Part of a response is out: the only honest end left is to drop the connection.
            request.loseConnection()
            return
        self._write_error(request, MatrixError(500, "M_UNKNOWN", "Internal server error"))

    def _write_failure(self, failure: Failure, request: Request) -> None:
        if isinstance(failure.value, MatrixError):
            self._write_error(request, failure.value)
            return
        logger.error("Request %s %s failed", request.method.decode(), loggable_path(request),
                     exc_info=failure.value)
        self._write_error(request, MatrixError(500, "M_UNKNOWN", "Internal server error"))

    @staticmethod
    def _write_error(request: Request, error: MatrixError) -> None:
        write_error(request, error)

    @staticmethod
    def _finish(request: Request, status: int, body: bytes, content_type: bytes) -> None:
        finish_response(request, status, body, content_type)

    @staticmethod
    def _log_finished(result: Any, request: Request) -> None:
        elapsed_ms = (time.monotonic() - getattr(request, "start_time", time.monotonic())) * 1000
        requester = getattr(request, "requester_id", None) or "-"
        status = request.code if not request._disconnected else "disconnected"
        method = request.method.decode("ascii", "replace")
        route = getattr(request, "route_name", "unmatched")
        HTTP_REQUESTS.labels(method, route, str(status)).inc()
        HTTP_REQUEST_SECONDS.labels(method, route).observe(elapsed_ms / 1000)
        observe_request(method, route, str(status), elapsed_ms / 1000)
        access_log.info(
            "%s %s %s %s %.1fms %s",
            request.getClientAddress().host if hasattr(request.getClientAddress(), "host") else "-",
            method,
            loggable_path(request),
            status,
            elapsed_ms,
            quote(requester, safe="@:!$#."),
        )
        return None


class ListenerRoot(Resource):
    """A listener's root: a few exact paths go to their own resources (the WebSocket
    stream), everything else to the JSON API, which routes on the full path itself."""

    def __init__(self, api: JsonApiResource, raw: dict[str, Resource]) -> None:
        super().__init__()
        self.api = api
        self.raw = raw

    def getChildWithDefault(self, path: bytes, request: Request) -> Resource:
        return self.raw.get(request.path.decode("ascii", "replace"), self.api)

    def render(self, request: Request) -> Any:
        return self.api.render(request)
