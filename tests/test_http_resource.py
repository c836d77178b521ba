"""The JSON request plumbing, driven over a real socket with a small test API."""

from __future__ import annotations

import json
from typing import Any

import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.web.server import Request, Site

from homeserver.errors import forbidden
from homeserver.http.request import bounded_request_factory, parse_json_object, query_int
from homeserver.http.resource import JsonApiResource, encode_json_dropping_unencodable
from homeserver.http.router import Router

MAX_BODY = 1024


def make_router() -> Router:
    router = Router()

    async def echo(request: Request, thing: str) -> tuple[int, Any]:
        body = parse_json_object(request)
        return 200, {"thing": thing, "body": body, "limit": query_int(request, "limit", default=5, minimum=1)}

    async def refuse(request: Request) -> tuple[int, Any]:
        raise forbidden("no")

    async def explode(request: Request) -> tuple[int, Any]:
        raise RuntimeError("boom")

    async def unencodable(request: Request) -> tuple[int, Any]:
        return 200, {"stored": "\ud800"}

    router.add("POST", "/echo/{thing}", echo)
    router.add("GET", "/refuse", refuse)
    router.add("GET", "/explode", explode)
    router.add("GET", "/unencodable", unencodable)
    return router


class ApiServer:
    def __init__(self) -> None:
        site = Site(JsonApiResource(make_router()))
        site.requestFactory = bounded_request_factory(4 * MAX_BODY, MAX_BODY)
        self.port = reactor.listenTCP(0, site, interface="127.0.0.1")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port.getHost().port}{path}"


async def call(method: str, path: str, data: bytes | None = None) -> tuple[int, dict[str, Any]]:
    api = ApiServer()
    try:
        response = await treq.request(method, api.url(path), data=data)
        return response.code, json.loads(await response.content())
    finally:
        await api.port.stopListening()


@pytest_twisted.ensureDeferred
async def test_json_body_and_percent_decoded_params() -> None:
    code, body = await call("POST", "/echo/a%20b%2Fc?limit=7", b'{"x": 1}')
    assert code == 200
    assert body == {"thing": "a b/c", "body": {"x": 1}, "limit": 7}


@pytest_twisted.ensureDeferred
async def test_not_json_body() -> None:
    for raw in (b"{not json", b"\xff\xfe", b"NaN", b'{"x": Infinity}'):
        code, body = await call("POST", "/echo/x", raw)
        assert (code, body["errcode"]) == (400, "M_NOT_JSON"), raw


@pytest_twisted.ensureDeferred
async def test_non_object_json_body() -> None:
    code, body = await call("POST", "/echo/x", b"[1, 2]")
    assert (code, body["errcode"]) == (400, "M_NOT_JSON")


@pytest_twisted.ensureDeferred
async def test_body_over_limit_is_too_large() -> None:
    code, body = await call("POST", "/echo/x", b'{"x": "' + b"a" * MAX_BODY + b'"}')
    assert (code, body["errcode"]) == (413, "M_TOO_LARGE")


@pytest_twisted.ensureDeferred
async def test_bad_query_param() -> None:
    code, body = await call("POST", "/echo/x?limit=lots", b"{}")
    assert (code, body["errcode"]) == (400, "M_INVALID_PARAM")


@pytest_twisted.ensureDeferred
async def test_matrix_error_and_unexpected_error() -> None:
    assert await call("GET", "/refuse") == (403, {"errcode": "M_FORBIDDEN", "error": "no"})
    code, body = await call("GET", "/explode")
    assert (code, body["errcode"]) == (500, "M_UNKNOWN")
    assert "boom" not in body["error"]


@pytest_twisted.ensureDeferred
async def test_body_beyond_what_the_site_buffers_is_too_large() -> None:
    code, body = await call("POST", "/echo/x", b'{"x": "' + b"a" * (10 * MAX_BODY) + b'"}')
    assert (code, body["errcode"]) == (413, "M_TOO_LARGE")


@pytest_twisted.ensureDeferred
async def test_nul_characters_are_refused() -> None:
    code, body = await call("POST", "/echo/x", b'{"x": "a\\u0000b"}')
    assert (code, body["errcode"]) == (400, "M_BAD_JSON")
    code, body = await call("POST", "/echo/a%00b", b"{}")
    assert (code, body["errcode"]) == (400, "M_INVALID_PARAM")
    code, body = await call("POST", "/echo/x?limit=1%00", b"{}")
    assert (code, body["errcode"]) == (400, "M_INVALID_PARAM")
    # An escaped backslash followed by the letters u0000 is ordinary text.
    code, body = await call("POST", "/echo/x", b'{"x": "a\\\\u0000b"}')
    assert code == 200 and body["body"] == {"x": "a\\u0000b"}


@pytest_twisted.ensureDeferred
async def test_lone_surrogates_are_bad_json_and_pairs_are_text() -> None:
    for raw in (b'{"x": "\\ud800"}', b'{"\\udfff": 1}', b'{"x": ["a", {"y": "\\udbff\\u0041"}]}'):
        code, body = await call("POST", "/echo/x", raw)
        assert (code, body["errcode"]) == (400, "M_BAD_JSON"), raw
    code, body = await call("POST", "/echo/x", b'{"x": "\\ud83d\\ude00", "y": "\\\\ud800"}')
    assert code == 200 and body["body"] == {"x": "\U0001F600", "y": "\\ud800"}


@pytest_twisted.ensureDeferred
async def test_a_response_that_cannot_be_encoded_is_a_500_not_a_hang() -> None:
    code, body = await call("GET", "/unencodable")
    assert (code, body["errcode"]) == (500, "M_UNKNOWN")


def test_the_lenient_encoder_drops_only_the_smallest_bad_part() -> None:
    value = {"events": [{"ok": 1}, {"content": {"v": "\ud800"}}, {"ok": 2}],
             "nested": {"good": "yes", "bad": "\udc00", "\ud800": 1, "deeper": {"list": ["a", "\udfff"]}},
             "fine": True}
    assert json.loads(encode_json_dropping_unencodable(value, "a test")) == {
        "events": [{"ok": 1}, {"ok": 2}], "nested": {"good": "yes", "deeper": {"list": ["a"]}}, "fine": True}
