"""In-process checks of what the event pipeline and other callers build on (no server process):
the key ring verifying event signatures under the room-version validity rules, its persistent
cache, and the outbound HTTP client's limits.  Keys and bodies still travel over real HTTPS
sockets, from the scripted peer and small test servers."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nacl.signing
import pytest
import pytest_twisted

from federation.keys.keyring import KeyRing
from homeserver.app import HomeServer
from homeserver.events.builder import ServerSigningKey, build_event
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.events.signing import SignatureError
from homeserver.outbound.client import (
    BlockedDestinationError,
    OutboundHttpClient,
    RequestTimedOutError,
    ResponseTooLargeError,
)
from homeserver.outbound.tls import VerifyingTls
from tests.support.databases import ENGINES
from tests.support.federation import FederationNet, ScriptedPeer, TlsHttpServer
from tests.support.in_process import config_on_fresh_database, running, start
from tests.support.server import free_port

HOUR_MS = 3_600_000


@pytest.fixture(params=ENGINES)
def config_path(request: pytest.FixtureRequest, tmp_path: Path, fednet: FederationNet) -> Any:
    overrides = fednet.federation_config("inproc.test", free_port(), ["inproc.test"])
    del overrides["server_name"]
    yield from config_on_fresh_database(request.param, tmp_path, server_name="inproc.test", **overrides)


@pytest_twisted.async_yield_fixture
async def hs(config_path: Path) -> AsyncIterator[HomeServer]:
    async for homeserver in running(config_path):
        yield homeserver


def peer_event(peer: ScriptedPeer, room_version: str, ts: int, key: ServerSigningKey | None = None,
               body: str = "hi") -> dict[str, Any]:
    event = build_event(room_version=KNOWN_ROOM_VERSIONS[room_version], event_type="m.room.message",
                        sender=f"@p:{peer.server_name}", content={"msgtype": "m.text", "body": body},
                        room_id=f"!room:{peer.server_name}", prev_event_ids=["$prev"], auth_event_ids=["$auth"],
                        depth=3, origin_server_ts=ts, key=key or peer.key)
    return event.pdu


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest_twisted.ensureDeferred
async def test_batch_verification_fetches_each_key_once(hs: HomeServer, peer: ScriptedPeer) -> None:
    room_version = KNOWN_ROOM_VERSIONS["10"]
    good = [peer_event(peer, "10", now_ms(), body=f"m{i}") for i in range(5)]
    tampered = dict(good[0], origin_server_ts=good[0]["origin_server_ts"] + 1)
    stranger = ServerSigningKey(peer.server_name, "ed25519:other", nacl.signing.SigningKey.generate())
    unknown_key = peer_event(peer, "10", now_ms(), key=stranger)
    results = await hs.get(KeyRing).verify_events_signatures([*good, tampered, unknown_key], room_version)
    assert results[:5] == [None] * 5
    assert isinstance(results[5], SignatureError)
    assert isinstance(results[6], SignatureError)
    assert peer.key_requests == 1  # one fetch served the whole batch
    await hs.get(KeyRing).verify_event_signatures(good[1], room_version)
    assert peer.key_requests == 1


@pytest_twisted.ensureDeferred
async def test_key_validity_must_cover_origin_server_ts(hs: HomeServer, peer: ScriptedPeer) -> None:
    """v5+: valid_until_ts (capped at now + 7 days) must reach the event's timestamp; v1-v4 ignore it."""
    keyring = hs.get(KeyRing)
    later = now_ms() + 2 * HOUR_MS  # the peer's keys are valid for one hour
    with pytest.raises(SignatureError):
        await keyring.verify_event_signatures(peer_event(peer, "10", later), KNOWN_ROOM_VERSIONS["10"])
    await keyring.verify_event_signatures(peer_event(peer, "4", later), KNOWN_ROOM_VERSIONS["4"])
    # Beyond now + 7 days nothing helps, however long the server says its key lasts.
    peer.valid_for_ms = 30 * 24 * HOUR_MS
    far = now_ms() + 8 * 24 * HOUR_MS
    with pytest.raises(SignatureError):
        await keyring.verify_event_signatures(peer_event(peer, "10", far), KNOWN_ROOM_VERSIONS["10"])


@pytest_twisted.ensureDeferred
async def test_old_keys_verify_only_what_they_signed_before_expiry(hs: HomeServer, peer: ScriptedPeer) -> None:
    retired = ServerSigningKey(peer.server_name, "ed25519:retired", nacl.signing.SigningKey.generate())
    expired_ts = now_ms() - HOUR_MS
    peer.old_keys[retired.key_id] = (retired.signing_key.verify_key, expired_ts)
    room_version = KNOWN_ROOM_VERSIONS["10"]
    await hs.get(KeyRing).verify_event_signatures(peer_event(peer, "10", expired_ts - 1000, retired), room_version)
    with pytest.raises(SignatureError):
        await hs.get(KeyRing).verify_event_signatures(peer_event(peer, "10", expired_ts + 1000, retired),
                                                      room_version)


@pytest_twisted.ensureDeferred
async def test_fetched_keys_survive_a_restart(config_path: Path, peer: ScriptedPeer) -> None:
    event = peer_event(peer, "10", now_ms())
    first = await start(config_path)
    try:
        await first.get(KeyRing).verify_event_signatures(event, KNOWN_ROOM_VERSIONS["10"])
    finally:
        await first.shutdown()
    peer.stop()  # the restarted server must not need the peer any more
    second = await start(config_path)
    try:
        await second.get(KeyRing).verify_event_signatures(event, KNOWN_ROOM_VERSIONS["10"])
        with pytest.raises(SignatureError):
            await second.get(KeyRing).verify_event_signatures(dict(event, depth=4), KNOWN_ROOM_VERSIONS["10"])
    finally:
        await second.shutdown()
    assert peer.key_requests == 1


@pytest_twisted.ensureDeferred
async def test_our_own_signatures_need_no_fetch(hs: HomeServer) -> None:
    event = build_event(room_version=KNOWN_ROOM_VERSIONS["11"], event_type="m.room.message",
                        sender="@me:inproc.test", content={"body": "x"}, room_id="!r:inproc.test",
                        prev_event_ids=["$p"], auth_event_ids=["$a"], depth=2, origin_server_ts=now_ms(),
                        key=hs.signing_key)
    await hs.get(KeyRing).verify_event_signatures(event.pdu, KNOWN_ROOM_VERSIONS["11"])


@pytest.fixture
def web(fednet: FederationNet) -> Any:
    server = TlsHttpServer(fednet, ["web.test"])
    fednet.dns.add("web.test", a=["127.0.0.1"])
    yield server
    server.stop()


def outbound(hs: HomeServer, fednet: FederationNet) -> OutboundHttpClient:
    return OutboundHttpClient(hs, tls=VerifyingTls([str(fednet.ca.ca_path)]))


@pytest_twisted.ensureDeferred
async def test_outbound_client_json_streaming_and_limits(hs: HomeServer, fednet: FederationNet, web: Any) -> None:
    client = outbound(hs, fednet)
    base = f"https://web.test:{web.port}"
    web.routes[("GET", "/json")] = lambda _r: (200, {"ok": True})
    web.routes[("GET", "/big")] = lambda _r: (200, b"x" * 100_000)
    web.routes[("POST", "/echo")] = lambda r: (200, r.rfile.read(int(r.headers["Content-Length"])))
    response = await client.request("GET", base + "/json")
    assert (response.code, await response.json()) == (200, {"ok": True})
    chunks: list[bytes] = []
    response = await client.request("GET", base + "/big")
    assert await response.stream_to(chunks.append) == 100_000
    assert b"".join(chunks) == b"x" * 100_000
    response = await client.request("GET", base + "/big", max_response_bytes=10_000)
    with pytest.raises(ResponseTooLargeError):
        await response.read()
    response = await client.request("POST", base + "/echo", json_body={"a": [1, 2]})
    assert await response.json() == {"a": [1, 2]}
    response = await client.request("POST", base + "/echo", body=b"raw bytes")
    assert await response.read() == b"raw bytes"
    await client.close()


@pytest_twisted.ensureDeferred
async def test_outbound_client_redirects_timeouts_and_blocks(hs: HomeServer, fednet: FederationNet,
                                                             web: Any) -> None:
    client = outbound(hs, fednet)
    base = f"https://web.test:{web.port}"
    blocked_host = f"blocked-{secrets.token_hex(3)}.test"
    fednet.dns.add(blocked_host, a=["127.2.0.9"])

    def redirect(to: str) -> Any:
        def route(request: Any) -> tuple[int, Any]:
            request.send_response(302)
            request.send_header("Location", to)
            request.send_header("Content-Length", "0")
            request.end_headers()
            return 0, b""
        return route

    web.routes[("GET", "/target")] = lambda _r: (200, {"arrived": True})
    web.routes[("GET", "/hop")] = redirect("/target")
    web.routes[("GET", "/evil-hop")] = redirect(f"https://{blocked_host}:{web.port}/target")
    web.routes[("GET", "/slow")] = lambda _r: (time.sleep(3), (200, {}))[1]
    response = await client.request("GET", base + "/hop", follow_redirects=3)
    assert await response.json() == {"arrived": True}
    assert (await client.request("GET", base + "/hop")).code == 302  # redirects are opt-in
    with pytest.raises(BlockedDestinationError):
        await client.request("GET", base + "/evil-hop", follow_redirects=3)
    with pytest.raises(BlockedDestinationError):
        await client.request("GET", f"https://127.2.0.9:{web.port}/target")
    with pytest.raises(RequestTimedOutError):
        await client.request("GET", base + "/slow", timeout_s=0.5)
    await client.close()


@pytest_twisted.ensureDeferred
async def test_server_acl_hook_reads_current_state(hs: HomeServer) -> None:
    from federation.transport.auth import FederationAuth
    from homeserver.errors import MatrixError
    from homeserver.handlers.rooms.room_create import RoomCreationHandler, parse_create_room

    acl = {"type": "m.room.server_acl", "state_key": "",
           "content": {"allow": ["*"], "deny": ["*.evil.test"], "allow_ip_literals": False}}
    request = parse_create_room({"preset": "public_chat", "initial_state": [acl]}, "12")
    room_id, _ = await hs.get(RoomCreationHandler).create_room("@alice:inproc.test", request)
    auth = hs.get(FederationAuth)
    await auth.check_server_acl("friendly.test:8448", room_id)
    for denied in ("a.evil.test", "b.evil.test:443", "10.0.0.1:8448"):
        with pytest.raises(MatrixError) as caught:
            await auth.check_server_acl(denied, room_id)
        assert (caught.value.status, caught.value.errcode) == (403, "M_FORBIDDEN")
    plain_room, _ = await hs.get(RoomCreationHandler).create_room(
        "@alice:inproc.test", parse_create_room({"preset": "public_chat"}, "12"))
    await auth.check_server_acl("a.evil.test", plain_room)  # no ACL: everyone may
