"""Lone UTF-16 surrogates are refused at the HTTP edge, on every route that reads JSON.

JSON text can carry an unpaired surrogate (``"\\ud800"``) that Python decodes into a
string no UTF-8 writer accepts: stored, it broke whoever read it later (a victim's
/sync hung for good).  So every body, query parameter and WebSocket message holding
one gets 400 M_BAD_JSON before anything is stored.  The routes come from the real
router, checked against the spec's list of operations with JSON bodies.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import websocket

from tests.support.apps import new_admin
from tests.support.client import Client, q
from tests.support.rooms import V3, create_room, join, new_user, send_message
from tests.support.routes import SPEC, router_routes, shape, spec_json_body_operations
from tests.support.server import RunningServer
from tests.support.sync import WS_PATH

# In a value, in a key, deep in a list, and a low surrogate before a high one.
SURROGATE_BODIES = [
    b'{"user_id": "\\ud800", "displayname": "x"}',
    b'{"\\udc00": {"a": 1}}',
    b'{"messages": {"@victim:test.local": {"*": {"v": ["ok", "\\udfff"]}}}}',
    b'{"type": "m.login.password", "password": "\\ude00\\ud83d"}',
]
BODY_METHODS = ("POST", "PUT", "DELETE")


@pytest_twisted.async_fixture(scope="module")
async def routes(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str]]:
    return await router_routes(tmp_path_factory.mktemp("routes"))


@pytest.fixture(scope="module")
def room(server: RunningServer) -> tuple[Client, str, str]:
    owner = new_user(server.base_url)
    room_id = create_room(owner, preset="public_chat")
    return owner, room_id, send_message(owner, room_id)


def fill(pattern: str, user: Client, room_id: str, event_id: str) -> str:
    values = {
        "room_id": room_id, "room": room_id, "user_id": str(user.user_id), "event_id": event_id,
        "device_id": str(user.device_id), "txn_id": secrets.token_hex(4), "event_type": "m.room.message",
        "state_key": "sk", "data_type": "org.example.t", "alias": f"#s{secrets.token_hex(4)}:test.local",
        "key": "displayname", "receipt_type": "m.read", "session_id": "session", "version": "1",
        "filter_id": "0", "token": "token", "rel_type": "m.thread",
    }
    path = pattern
    for name in [part[1:-1] for part in pattern.split("/") if part.startswith("{")]:
        path = path.replace("{" + name + "}", q(values.get(name, "x")))
    if "/room_keys/keys" in pattern:
        path += "?version=1"  # required by the spec, and checked before the body
    return path


def test_every_route_that_reads_json_refuses_lone_surrogates(
        server: RunningServer, routes: list[tuple[str, str]], room: tuple[Client, str, str]) -> None:
    _, room_id, event_id = room
    reads_json: set[tuple[str, str]] = set()
    for method, pattern in routes:
        if method not in BODY_METHODS or "/_matrix/client/r0/" in pattern:
            continue  # r0 paths are the same handlers as v3
        # A fresh member per route: a route that ignores its body (logout) acts on the probe.
        # Admin-only routes (lock, suspend) refuse anyone else before reading the body.
        user = new_admin(server) if "/admin/" in pattern else new_user(server.base_url)
        join(user, room_id)
        path = fill(pattern, user, room_id, event_id)
        probe = user.request(method, path, raw=b"{not json")
        assert probe.status < 500, (method, pattern, probe)
        if probe.errcode != "M_NOT_JSON":
            continue  # this route does not read a JSON body (or refused before reading it)
        reads_json.add((method, shape(pattern)))
        for body in SURROGATE_BODIES:
            response = user.request(method, path, raw=body)
            assert (response.status, response.errcode) == (400, "M_BAD_JSON"), (method, pattern, body, response)
    assert len(reads_json) > 50
    if SPEC.exists():
        served = {(method, shape(pattern)) for method, pattern in routes}
        in_spec = spec_json_body_operations() & served
        assert in_spec - reads_json == set()


def test_login_and_register_need_no_token_to_be_refused(server: RunningServer) -> None:
    anonymous = Client(server.base_url)
    for path in ("/login", "/register"):
        for body in SURROGATE_BODIES:
            response = anonymous.request("POST", V3 + path, raw=body, token=False)
            assert (response.status, response.errcode) == (400, "M_BAD_JSON"), (path, body, response)


def test_the_endpoints_that_answered_500(server: RunningServer, room: tuple[Client, str, str]) -> None:
    """The ones found by hand first, each with the surrogate where the field is."""
    _, room_id, _ = room
    user = new_user(server.base_url)
    join(user, room_id)
    me = q(str(user.user_id))
    cases = [
        ("PUT", f"/profile/{me}/displayname", b'{"displayname": "\\ud800"}'),
        ("PUT", f"/devices/{q(str(user.device_id))}", b'{"display_name": "\\udbff"}'),
        ("PUT", f"/user/{me}/account_data/org.example.t", b'{"v": "\\ud800"}'),
        ("POST", f"/user/{me}/filter", b'{"room": {"rooms": ["\\ud800"]}}'),
        ("POST", f"/rooms/{q(room_id)}/invite", b'{"user_id": "@\\ud800:test.local"}'),
        ("PUT", "/sendToDevice/m.test/t1", b'{"messages": {"@victim:test.local": {"*": {"v": "\\ud800"}}}}'),
    ]
    for method, path, body in cases:
        response = user.request(method, V3 + path, raw=body)
        assert (response.status, response.errcode) == (400, "M_BAD_JSON"), (path, response)
    # Escaped pairs are ordinary characters (clients that escape non-ASCII send emoji so).
    ok = user.put(f"{V3}/profile/{me}/displayname", raw=b'{"displayname": "\\ud83d\\ude00 me"}')
    assert ok.status == 200, ok
    assert user.get(f"{V3}/profile/{me}/displayname").body == {"displayname": "\U0001F600 me"}


def test_query_strings_and_path_parameters(server: RunningServer, room: tuple[Client, str, str]) -> None:
    _, room_id, _ = room
    user = new_user(server.base_url)
    join(user, room_id)
    bad_filter = '{"room": {"timeline": {"types": ["\\ud800"]}}}'
    for path in (f"{V3}/sync", f"{V3}/rooms/{q(room_id)}/messages"):
        response = user.get(path, params={"filter": bad_filter})
        assert (response.status, response.errcode) == (400, "M_INVALID_PARAM"), (path, response)
    # A surrogate's UTF-8 form is not UTF-8, in a query or in the path; nor is a stray byte.
    for raw_query in ("since=%ED%A0%80", "set_presence=%ED%B0%80", "filter=%FF"):
        response = user.get(f"{V3}/sync?{raw_query}")
        assert (response.status, response.errcode) == (400, "M_INVALID_PARAM"), (raw_query, response)
    for segment in ("%ED%A0%80", "%C0%80", "%FF"):
        response = user.get(f"{V3}/rooms/{segment}/state")
        assert response.status == 400, (segment, response)
    # Bad percent-encoding is literal text: a malformed room ID or token, not a crash.
    assert user.get(f"{V3}/rooms/%ZZ/state").errcode == "M_INVALID_PARAM"
    assert user.get(f"{V3}/rooms/{q(room_id)}/messages?from=%ZZ%").errcode == "M_INVALID_PARAM"
    assert user.get(f"{V3}/sync?since=%").errcode == "M_INVALID_PARAM"


def test_websocket_messages_with_lone_surrogates_are_refused(server: RunningServer,
                                                             tmp_path: Path) -> None:
    user = new_user(server.base_url)
    url = server.base_url.replace("http://", "ws://") + WS_PATH + f"?access_token={user.access_token}"
    ws = websocket.create_connection(url, timeout=30)
    try:
        ws.send('{"type": "typing", "request_id": "r1", "room_id": "!\\ud800", "typing": true}')
        reply: dict[str, Any] = {}
        while reply.get("type") != "error":
            reply = json.loads(ws.recv())
        assert reply["errcode"] == "M_BAD_JSON"
    finally:
        ws.close()
