"""The pusher pool in process, on real storage, against a real push gateway on loopback:
real stored events are handed to the pool as the push rule evaluator hands them, and the
gateway records what arrives. (End-to-end tests over HTTP: test_pushers_delivery.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_twisted
from twisted.internet import reactor, task

from homeserver.app import HomeServer
from homeserver.config import load_config
from homeserver.handlers.accounts.auth import Requester
from homeserver.handlers.pushers.pool import PusherPool
from homeserver.handlers.pushers.settings import PusherSettings, parse_pusher_request
from homeserver.handlers.rooms.membership import RoomMemberHandler
from homeserver.handlers.rooms.message_send import EventSendHandler
from homeserver.handlers.rooms.room_create import RoomCreationHandler, parse_create_room
from storage.stores.events import EventStore
from storage.stores.pushers import PusherStore
from tests.support.databases import ENGINES, drop_database, fresh_database_config
from tests.support.push_gateway import PushGateway, pusher_body
from tests.support.server import write_config

ALICE = "@alice:test.local"
BOB = "@bob:test.local"
CAROL = "@carol:test.local"
NOTIFY_SOUND = ["notify", {"set_tweak": "sound", "value": "default"}]
WAIT_S = 30.0


@attrs.frozen
class Note:
    """A notification as the push rule evaluator hands it over (push/notifications.py)."""

    user_id: str
    room_id: str
    event_id: str
    stream_ordering: int
    thread_id: str
    actions: list[Any]
    highlight: bool


@pytest.fixture
def gateway() -> Iterator[PushGateway]:
    running = PushGateway().start()
    yield running
    running.stop()


@pytest.fixture(params=ENGINES)
def config_path(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    database = fresh_database_config(request.param, tmp_path)
    yield write_config(tmp_path, database, ip_range_whitelist=["127.0.0.0/8"])
    drop_database(database)


async def start(config_path: Path) -> HomeServer:
    homeserver = HomeServer(load_config(str(config_path)), reactor)
    await homeserver.setup()
    homeserver.get(PusherPool)  # as the API module does when the server starts listening
    await homeserver.start_background_work()
    return homeserver


@pytest_twisted.async_yield_fixture
async def hs(config_path: Path) -> AsyncIterator[HomeServer]:
    homeserver = await start(config_path)
    yield homeserver
    await homeserver.shutdown()


def requester(user_id: str) -> Requester:
    return Requester(user_id=user_id, device_id="DEV", is_guest=False, is_admin=False, access_token_id=1)


async def room_with(hs: HomeServer, *members: str) -> str:
    request = parse_create_room({"preset": "public_chat", "name": "Pushing room"}, "12")
    room_id, _ = await hs.get(RoomCreationHandler).create_room(ALICE, request)
    for member in members:
        await hs.get(RoomMemberHandler).join(member, room_id)
    return room_id


async def add_pusher(hs: HomeServer, user_id: str, gateway: PushGateway, pushkey: str, **data: Any) -> None:
    await hs.get(PusherSettings).set_pusher(user_id, "DEV", 1, parse_pusher_request(
        pusher_body(gateway.url, pushkey, **data)))


async def notify(hs: HomeServer, user_id: str, room_id: str, body: str = "hi bob",
                 actions: list[Any] = NOTIFY_SOUND) -> str:
    event_id = await hs.get(EventSendHandler).send_event(
        requester(ALICE), room_id, "m.room.message", {"msgtype": "m.text", "body": body})
    ordering = await hs.get(EventStore).get_stream_ordering(event_id)
    assert ordering is not None
    hs.get(PusherPool).on_notifications([Note(user_id, room_id, event_id, ordering, "main", actions, False)])
    return event_id


async def until(check: Any, what: str) -> None:
    """Poll without blocking the reactor the server runs on."""
    for _ in range(int(WAIT_S / 0.05)):
        if check():
            return
        await task.deferLater(reactor, 0.05, lambda: None)
    raise AssertionError(f"timed out waiting for {what}")


async def eventually(check: Any, what: str) -> None:
    """``until`` for checks that read the database (an async callable)."""
    for _ in range(int(WAIT_S / 0.05)):
        if await check():
            return
        await task.deferLater(reactor, 0.05, lambda: None)
    raise AssertionError(f"timed out waiting for {what}")


async def queue_is_empty(hs: HomeServer, user_id: str) -> bool:
    for pusher in await hs.get(PusherStore).get_pushers_for_user(user_id):
        if await hs.get(PusherStore).get_queued(pusher.id, 10):
            return False
    return True


def delivered_ids(gateway: PushGateway) -> list[str]:
    return [n["event_id"] for n in gateway.delivered()]


@pytest_twisted.ensureDeferred
async def test_a_notification_reaches_the_gateway_with_the_full_payload(hs: HomeServer,
                                                                      gateway: PushGateway) -> None:
    room_id = await room_with(hs, BOB)
    await add_pusher(hs, BOB, gateway, "bob-key", extra="kept")
    event_id = await notify(hs, BOB, room_id)
    await until(lambda: delivered_ids(gateway) == [event_id], "the notification")
    notification = gateway.delivered()[0]
    assert notification["room_id"] == room_id
    assert notification["type"] == "m.room.message"
    assert notification["sender"] == ALICE
    assert notification["room_name"] == "Pushing room"
    assert notification["content"] == {"msgtype": "m.text", "body": "hi bob"}
    assert notification["prio"] == "high"  # a sound tweak
    assert isinstance(notification["counts"]["unread"], int)
    [device] = notification["devices"]
    assert device["app_id"] == "org.example.app" and device["pushkey"] == "bob-key"
    assert device["data"] == {"extra": "kept"}  # everything but the url
    assert device["tweaks"] == {"sound": "default"}
    assert isinstance(device["pushkey_ts"], int) and device["pushkey_ts"] < 10**11  # seconds


@pytest_twisted.ensureDeferred
async def test_event_id_only_sends_no_event_details(hs: HomeServer, gateway: PushGateway) -> None:
    room_id = await room_with(hs, BOB)
    await add_pusher(hs, BOB, gateway, "bob-key", format="event_id_only")
    event_id = await notify(hs, BOB, room_id, "secret words")
    await until(lambda: delivered_ids(gateway) == [event_id], "the notification")
    notification = gateway.delivered()[0]
    assert set(notification) == {"event_id", "room_id", "counts", "devices"}
    assert notification["devices"][0]["data"] == {"format": "event_id_only"}


@pytest_twisted.ensureDeferred
async def test_only_notify_actions_are_pushed_and_only_to_that_users_pushers(hs: HomeServer,
                                                                            gateway: PushGateway) -> None:
    room_id = await room_with(hs, BOB, CAROL)
    await add_pusher(hs, BOB, gateway, "bob-key")
    await add_pusher(hs, CAROL, gateway, "carol-key")
    silent = await notify(hs, BOB, room_id, "no push", actions=[])
    for_carol = await notify(hs, CAROL, room_id, "for carol")
    for_bob = await notify(hs, BOB, room_id, "for bob")
    await until(lambda: len(gateway.delivered()) == 2, "two notifications")
    sent = {(n["event_id"], n["devices"][0]["pushkey"]) for n in gateway.delivered()}
    assert sent == {(for_carol, "carol-key"), (for_bob, "bob-key")}
    assert silent not in delivered_ids(gateway)


@pytest_twisted.ensureDeferred
async def test_it_backs_off_while_the_gateway_fails_and_delivers_once(hs: HomeServer,
                                                                   gateway: PushGateway) -> None:
    room_id = await room_with(hs, BOB)
    await add_pusher(hs, BOB, gateway, "bob-key")
    gateway.fail_next = 2
    first = await notify(hs, BOB, room_id, "first")
    await until(lambda: gateway.failed_count() == 1, "the first failure")
    second = await notify(hs, BOB, room_id, "second")  # queued behind the failing one
    await until(lambda: len(gateway.delivered()) == 2, "both, once the gateway is back")
    assert delivered_ids(gateway) == [first, second]
    assert gateway.failed_count() == 2
    await eventually(lambda: queue_is_empty(hs, BOB), "the queue to empty")
    [pusher] = await hs.get(PusherStore).get_pushers_for_user(BOB)
    assert pusher.failing_since is None and pusher.backoff_ms == 0


@pytest_twisted.ensureDeferred
async def test_a_rejected_pushkey_removes_its_pusher(hs: HomeServer, gateway: PushGateway) -> None:
    room_id = await room_with(hs, BOB)
    await add_pusher(hs, BOB, gateway, "dead-key")
    gateway.rejected.add("dead-key")
    await notify(hs, BOB, room_id)
    await until(lambda: len(gateway.delivered()) == 1, "the rejected notification")
    await eventually(lambda: _no_pushers(hs, BOB), "the pusher to go")


async def _no_pushers(hs: HomeServer, user_id: str) -> bool:
    return not await hs.get(PusherStore).get_pushers_for_user(user_id)


@pytest_twisted.ensureDeferred
async def test_a_restart_resumes_the_queue(config_path: Path, gateway: PushGateway) -> None:
    homeserver = await start(config_path)
    room_id = await room_with(homeserver, BOB)
    await add_pusher(homeserver, BOB, gateway, "bob-key")
    gateway.down = True
    event_id = await notify(homeserver, BOB, room_id)
    await until(lambda: gateway.failed_count() >= 1, "a failed attempt")
    await homeserver.shutdown()
    gateway.down = False
    restarted = await start(config_path)
    try:
        await until(lambda: delivered_ids(gateway) == [event_id], "delivery after the restart")
        await eventually(lambda: queue_is_empty(restarted, BOB), "the queue to empty")
        assert delivered_ids(gateway) == [event_id]
    finally:
        await restarted.shutdown()
