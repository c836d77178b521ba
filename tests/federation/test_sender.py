"""The transaction sender against scripted peers over HTTPS: our events and EDUs reach the servers
in the room (and no others) in signed transactions of at most 50 PDUs, one in flight; a peer that
is down gets everything once it is back, even across our restart; backoff ends when the peer
contacts us; a destination at a blocked address is never dialled.

The server runs in the test process (tests/support/fed_sender.py) so that a peer's user can join
a room through the pipeline, as the federation receiver will do; clients talk HTTP to it."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_twisted
import requests
from twisted.internet import reactor, threads
from twisted.internet.task import deferLater

from federation.sender import FederationSender
from storage.stores.federation_queue import FederationQueueStore
from tests.support.client import Client, q
from tests.support.databases import ENGINES, drop_database, fresh_database_config
from tests.support.fed_sender import (
    InProcessServer,
    RecordingPeer,
    in_process_config,
    start_in_process,
)
from tests.support.federation import FederationNet, ScriptedPeer, TlsHttpServer

T = TypeVar("T")
FAST_BACKOFF = {"destination_min_retry_interval": "200ms", "destination_max_retry_interval": "2s",
                "destination_retry_multiplier": 2}


@pytest.fixture(params=ENGINES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    config = fresh_database_config(request.param, tmp_path)
    yield config
    drop_database(config)


def make_config(fednet: FederationNet, tmp_path: Path, database: dict[str, Any], **federation: Any) -> Path:
    return in_process_config(fednet, tmp_path / "hs", database, presence={"enabled": True},
                             federation={**FAST_BACKOFF, **federation})


@pytest_twisted.async_yield_fixture
async def server(fednet: FederationNet, tmp_path: Path, database: dict[str, Any]) -> AsyncIterator[InProcessServer]:
    started = await start_in_process(make_config(fednet, tmp_path, database))
    yield started
    await started.stop()


def recording_peer(fednet: FederationNet, server: Callable[[], InProcessServer]) -> RecordingPeer:
    return RecordingPeer(fednet, lambda: server().verify_keys(), lambda: server().server_name)


@pytest.fixture
def peers(fednet: FederationNet) -> Iterator[Callable[[Callable[[], InProcessServer]], RecordingPeer]]:
    made: list[RecordingPeer] = []

    def make(server: Callable[[], InProcessServer]) -> RecordingPeer:
        made.append(recording_peer(fednet, server))
        return made[-1]

    yield make
    for peer in made:
        peer.stop()


async def eventually(check: Callable[[], T], timeout_s: float = 60.0) -> T:
    """Poll until ``check()`` is truthy (a deadline for failing, not a speed check)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await deferLater(reactor, 0.05, lambda: None)


async def room_with(server: InProcessServer, *peers: ScriptedPeer) -> tuple[Client, str]:
    alice = await server.register()
    room = await server.call(alice, "POST", "/_matrix/client/v3/createRoom",
                             {"preset": "public_chat", "room_version": "10"})
    for peer in peers:
        await server.join_from(peer, room["room_id"])
    return alice, room["room_id"]


async def send_text(server: InProcessServer, client: Client, room_id: str, body: str) -> str:
    answer = await server.call(client, "PUT", f"/_matrix/client/v3/rooms/{q(room_id)}/send/m.room.message/"
                               f"{secrets.token_hex(6)}", {"msgtype": "m.text", "body": body})
    return str(answer["event_id"])


def _per_transaction(peer: RecordingPeer) -> list[list[Any]]:
    from homeserver.events.event import Event
    from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
    return [[Event.from_pdu(p, KNOWN_ROOM_VERSIONS["10"]) for p in t.body["pdus"]] for t in peer.accepted()]


def arrived_ids(peer: RecordingPeer) -> list[str]:
    """Event IDs in first-arrival order."""
    return list(dict.fromkeys(event.event_id for event in peer.events()))


@pytest_twisted.ensureDeferred
async def test_a_message_reaches_the_servers_in_the_room_signed(server: InProcessServer, peers: Any) -> None:
    member, outsider = peers(lambda: server), peers(lambda: server)
    alice, room_id = await room_with(server, member.scripted)
    event_id = await send_text(server, alice, room_id, "hello over federation")
    await eventually(lambda: event_id in arrived_ids(member))
    (txn,) = member.accepted()
    assert txn.verified and txn.origin == server.server_name
    assert txn.body["origin"] == server.server_name and isinstance(txn.body["origin_server_ts"], int)
    (pdu,) = txn.body["pdus"]
    assert pdu["content"]["body"] == "hello over federation" and pdu["room_id"] == room_id
    assert "signatures" in pdu and server.server_name in pdu["signatures"]
    assert outsider.received == []
    assert outsider.server_name not in await server.hs.get(FederationQueueStore).destinations_with_pending()


@pytest_twisted.ensureDeferred
async def test_an_outage_backs_off_then_everything_arrives_in_order_in_batches(server: InProcessServer,
                                                                              peers: Any) -> None:
    peer = peers(lambda: server)
    alice, room_id = await room_with(server, peer.scripted)
    peer.fail_with = 503
    sent = [await send_text(server, alice, room_id, f"m{i}") for i in range(120)]
    store = server.hs.get(FederationQueueStore)
    await eventually(lambda: peer.failed_attempts() >= 3)
    timings = await store.get_retry(peer.server_name)
    assert timings is not None and timings.retry_interval > 200  # grew past the minimum
    assert timings.failure_ts is not None and timings.failure_ts < timings.retry_last_ts
    peer.hold_s = 0.2  # a second transaction sent alongside would overlap this one
    peer.fail_with = None
    await eventually(lambda: set(sent) <= set(arrived_ids(peer)))
    positions = {event_id: i for i, event_id in enumerate(sent)}
    assert [positions.get(event_id) for event_id in arrived_ids(peer)] == list(range(len(sent))), \
        [[positions.get(e.event_id) for e in t_events] for t_events in _per_transaction(peer)]
    assert all(len(t.body["pdus"]) <= 50 for t in peer.accepted())
    assert len(peer.accepted()) >= 3
    assert peer.max_in_flight == 1
    # The peer records a transaction before its answer reaches us: wait for us to hear it.
    await eventually_async(lambda: _drained(store, peer.server_name))
    assert await store.get_retry(peer.server_name) == type(timings)(0, 0, None)


async def _drained(store: FederationQueueStore, destination: str) -> bool:
    timings = await store.get_retry(destination)
    return await store.count_pdus(destination) == 0 and timings is not None and timings.retry_interval == 0


@pytest_twisted.ensureDeferred
async def test_a_peer_down_across_our_restart_gets_every_event(fednet: FederationNet, tmp_path: Path,
                                                               database: dict[str, Any], peers: Any) -> None:
    config = make_config(fednet, tmp_path, database)
    current = await start_in_process(config)
    peer = peers(lambda: current)
    try:
        alice, room_id = await room_with(current, peer.scripted)
        first = await send_text(current, alice, room_id, "before the outage")
        await eventually(lambda: first in arrived_ids(peer))
        peer.go_down()
        sent = [await send_text(current, alice, room_id, f"during {i}") for i in range(60)]
        await eventually_async(lambda: current.hs.get(FederationQueueStore).get_retry(peer.server_name))
        await current.stop()
        current = await start_in_process(config)
        peer.come_up()
        await eventually(lambda: set(sent) <= set(arrived_ids(peer)))
        assert arrived_ids(peer) == [first, *sent]
    finally:
        await current.stop()


async def eventually_async(check: Callable[[], Any], timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await deferLater(reactor, 0.05, lambda: None)


@pytest_twisted.ensureDeferred
async def test_a_request_from_the_peer_ends_its_backoff(fednet: FederationNet, tmp_path: Path,
                                                        database: dict[str, Any], peers: Any) -> None:
    server = await start_in_process(make_config(fednet, tmp_path, database,
                                                destination_min_retry_interval="1h"))
    peer = peers(lambda: server)
    try:
        alice, room_id = await room_with(server, peer.scripted)
        peer.fail_with = 500
        event_id = await send_text(server, alice, room_id, "held back by an hour of backoff")
        await eventually(lambda: peer.failed_attempts() == 1)
        await eventually_async(lambda: server.hs.get(FederationQueueStore).get_retry(peer.server_name))
        peer.fail_with = None
        uri = f"/_matrix/federation/v1/query/profile?user_id={q(alice.user_id or '')}"
        port = server.hs.config.listeners[1].port
        response = await threads.deferToThread(
            requests.get, f"https://127.0.0.1:{port}{uri}", verify=str(fednet.ca.ca_path), timeout=30,
            headers={"Authorization": peer.scripted.authorization("GET", uri, server.server_name)})
        assert response.status_code == 200
        await eventually(lambda: event_id in arrived_ids(peer))
        assert peer.failed_attempts() == 1
    finally:
        await server.stop()


@pytest_twisted.ensureDeferred
async def test_typing_receipts_presence_and_to_device_reach_the_room(server: InProcessServer,
                                                                     peers: Any) -> None:
    member, outsider = peers(lambda: server), peers(lambda: server)
    alice, room_id = await room_with(server, member.scripted)
    user = alice.user_id or ""
    event_id = await send_text(server, alice, room_id, "read me")
    await server.call(alice, "PUT", f"/_matrix/client/v3/rooms/{q(room_id)}/typing/{q(user)}",
                      {"typing": True, "timeout": 30000})
    await eventually(lambda: member.edus("m.typing"))
    assert member.edus("m.typing") == [{"room_id": room_id, "user_id": user, "typing": True}]
    await server.call(alice, "PUT", f"/_matrix/client/v3/rooms/{q(room_id)}/typing/{q(user)}", {"typing": False})
    await eventually(lambda: len(member.edus("m.typing")) == 2)
    assert member.edus("m.typing")[1]["typing"] is False

    await server.call(alice, "POST", f"/_matrix/client/v3/rooms/{q(room_id)}/receipt/m.read/{q(event_id)}", {})
    (receipt,) = await eventually(lambda: member.edus("m.receipt"))
    read = receipt[room_id]["m.read"][user]
    assert read["event_ids"] == [event_id] and isinstance(read["data"]["ts"], int)

    await server.call(alice, "PUT", f"/_matrix/client/v3/presence/{q(user)}/status", {"presence": "unavailable"})
    pushes = await eventually(lambda: [p for e in member.edus("m.presence") for p in e["push"]
                                       if p["presence"] == "unavailable"])
    assert pushes[0]["user_id"] == user

    remote_user = f"@bob:{member.server_name}"
    body = {"messages": {remote_user: {"DEVICE": {"secret": "s3"}, "*": {"all": True}}}}
    path = "/_matrix/client/v3/sendToDevice/m.test.type/txn1"
    await server.call(alice, "PUT", path, body)
    await server.call(alice, "PUT", path, body)  # a retry: delivered once
    (message,) = await eventually(lambda: member.edus("m.direct_to_device"))
    assert message["sender"] == user and message["type"] == "m.test.type"
    assert message["messages"] == body["messages"]
    assert isinstance(message["message_id"], str) and message["message_id"]
    # The retry comes after the first in the same stream, so anything it sent would be here by now.
    await server.call(alice, "PUT", "/_matrix/client/v3/sendToDevice/m.test.type/txn2",
                      {"messages": {remote_user: {"DEVICE": {"second": True}}}})
    await eventually(lambda: len(member.edus("m.direct_to_device")) == 2)
    assert member.edus("m.direct_to_device")[1]["messages"] == {remote_user: {"DEVICE": {"second": True}}}
    assert outsider.received == []


@pytest_twisted.ensureDeferred
async def test_send_edu_is_queued_for_the_destination(server: InProcessServer, peers: Any) -> None:
    peer = peers(lambda: server)
    await server.hs.get(FederationSender).send_edu(peer.server_name, "m.device_list_update",
                                                   {"user_id": "@a:b", "device_id": "D"}, key="k")
    (content,) = await eventually(lambda: peer.edus("m.device_list_update"))
    assert content == {"user_id": "@a:b", "device_id": "D"}


@pytest_twisted.ensureDeferred
async def test_a_destination_at_a_blocked_address_is_never_dialled(server: InProcessServer, peers: Any,
                                                                   fednet: FederationNet) -> None:
    member = peers(lambda: server)
    host = f"blocked-{secrets.token_hex(3)}.test"
    listener = TlsHttpServer(fednet, [host], address="127.2.0.9")
    fednet.dns.add(host, a=["127.2.0.9"])
    blocked = ScriptedPeer(fednet, server_name=f"{host}:{listener.port}", address="127.2.0.10",
                           cert_names=[host])
    try:
        alice, room_id = await room_with(server, member.scripted, blocked)
        event_id = await send_text(server, alice, room_id, "not for the blocked server")
        await eventually(lambda: event_id in arrived_ids(member))
        await eventually_async(lambda: server.hs.get(FederationQueueStore).get_retry(blocked.server_name))
        assert listener.connections == 0
        assert await server.hs.get(FederationQueueStore).count_pdus(blocked.server_name) == 1
    finally:
        listener.stop()
        blocked.stop()


@pytest_twisted.ensureDeferred
async def test_no_presence_goes_out_when_presence_is_disabled(fednet: FederationNet, tmp_path: Path,
                                                              database: dict[str, Any], peers: Any) -> None:
    config = in_process_config(fednet, tmp_path / "hs", database, presence={"enabled": False},
                               federation=FAST_BACKOFF)
    server = await start_in_process(config)
    peer = peers(lambda: server)
    try:
        alice, room_id = await room_with(server, peer.scripted)
        user = alice.user_id or ""
        await server.call(alice, "PUT", f"/_matrix/client/v3/presence/{q(user)}/status", {"presence": "online"})
        event_id = await send_text(server, alice, room_id, "after the presence change")
        await eventually(lambda: event_id in arrived_ids(peer))
        assert peer.edus("m.presence") == []
        assert await server.hs.get(FederationQueueStore).pending_edus(peer.server_name, 10) == []
    finally:
        await server.stop()
