"""In-process checks of the room machinery other areas build on (no HTTP):
the per-room queue (linear DAG, batching, notifications), state groups, and the
sync-facing read API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer

from homeserver.app import HomeServer
from homeserver.handlers.accounts.auth import Requester
from homeserver.handlers.rooms.membership import RoomMemberHandler
from homeserver.handlers.rooms.message_send import EventSendHandler
from homeserver.handlers.rooms.room_create import RoomCreationHandler, parse_create_room
from homeserver.handlers.rooms.room_state import RoomStateHandler
from homeserver.handlers.rooms.visibility import filter_events_for_client
from homeserver.notifier import Notifier, StreamAdvance
from storage.stores.events import EventStore
from storage.stores.room_members import RoomMemberStore
from storage.stores.state import SNAPSHOT_INTERVAL
from tests.support.databases import ENGINES
from tests.support.in_process import config_on_fresh_database, running, start

ALICE = "@alice:test.local"
BOB = "@bob:test.local"


@pytest.fixture(params=ENGINES)
def config_path(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    yield from config_on_fresh_database(request.param, tmp_path)


@pytest_twisted.async_yield_fixture
async def hs(config_path: Path) -> AsyncIterator[HomeServer]:
    async for homeserver in running(config_path):
        yield homeserver


def requester(user_id: str, device: str = "DEV") -> Requester:
    return Requester(user_id=user_id, device_id=device, is_guest=False, is_admin=False, access_token_id=1)


async def new_room(hs: HomeServer, **body: Any) -> str:
    request = parse_create_room({"preset": "public_chat", **body}, "12")
    room_id, _ = await hs.get(RoomCreationHandler).create_room(ALICE, request)
    return room_id


async def send(hs: HomeServer, room_id: str, body: str, user: str = ALICE) -> str:
    return await hs.get(EventSendHandler).send_event(
        requester(user), room_id, "m.room.message", {"msgtype": "m.text", "body": body})


@pytest_twisted.ensureDeferred
async def test_concurrent_sends_are_batched_into_a_linear_dag(hs: HomeServer) -> None:
    room_id = await new_room(hs)
    persists: list[str] = []
    original = hs.db.run_interaction

    async def counting(desc: str, *args: Any, **kwargs: Any) -> Any:
        if desc == "persist_events":
            persists.append(desc)
        return await original(desc, *args, **kwargs)

    hs.db.run_interaction = counting  # type: ignore[method-assign]
    ids = await defer.gatherResults([
        defer.ensureDeferred(send(hs, room_id, f"m{i}")) for i in range(40)
    ])
    hs.db.run_interaction = original  # type: ignore[method-assign]
    assert len(set(ids)) == 40
    assert len(persists) < 40  # adjacent events shared transactions
    events = await hs.get(EventStore).get_room_events_between(room_id, 0, 10**9, 1000, newest_first=False)
    for previous, current in zip(events, events[1:], strict=False):
        assert current.event.prev_event_ids == [previous.event_id]
        assert current.depth == previous.depth + 1
        assert current.stream_ordering > previous.stream_ordering


@pytest_twisted.ensureDeferred
async def test_notifier_hears_rooms_and_membership_targets(hs: HomeServer) -> None:
    advances: list[StreamAdvance] = []
    hs.get(Notifier).add_listener(advances.append)
    room_id = await new_room(hs, preset="private_chat")
    await hs.get(RoomMemberHandler).invite(ALICE, room_id, BOB)
    current = await hs.get(EventStore).get_max_stream_position()
    events_advances = [a for a in advances if a.stream == "events"]
    assert events_advances[-1].position == current
    assert all(a.rooms == {room_id} for a in events_advances)
    assert BOB in events_advances[-1].users


@pytest_twisted.ensureDeferred
async def test_state_groups_stay_bounded_and_correct(hs: HomeServer) -> None:
    room_id = await new_room(hs)
    state = hs.get(RoomStateHandler)
    store = hs.get(EventStore)
    names = []
    for i in range(SNAPSHOT_INTERVAL + 30):
        names.append(await hs.get(EventSendHandler).send_state(requester(ALICE), room_id, "m.room.name", "",
                                                                {"name": f"name {i}"}))
        if i % 10 == 0:
            await send(hs, room_id, f"between {i}")
    early = await store.get_event(names[10])
    assert early is not None
    early_state = await state.get_state_ids_after_event(early)
    assert early_state[("m.room.name", "")] == names[10]
    message = (await store.get_room_events_between(room_id, early.stream_ordering, 10**9, 1, False))[0]
    assert message.state_group == early.state_group  # messages reuse their predecessor's group

    def counts(txn: Any) -> tuple[int, int, int]:
        txn.execute("SELECT MAX(chain_length) FROM state_groups WHERE room_id = ?", (room_id,))
        longest = txn.fetchone()[0]
        txn.execute("SELECT COUNT(*) FROM state_groups WHERE room_id = ?", (room_id,))
        groups = txn.fetchone()[0]
        txn.execute("SELECT COUNT(*) FROM state_group_entries e JOIN state_groups g ON g.id = e.state_group"
                    " WHERE g.room_id = ?", (room_id,))
        return longest, groups, txn.fetchone()[0]

    longest, groups, entries = await hs.db.run_interaction("count_groups", counts)
    assert longest <= SNAPSHOT_INTERVAL
    state_events = len(names) + 5  # create, join, power levels, join rules, history visibility
    assert groups == state_events
    assert entries < 3 * state_events  # deltas of one row plus a few small snapshots


@pytest_twisted.ensureDeferred
async def test_sync_facing_reads(hs: HomeServer) -> None:
    room_id = await new_room(hs)
    members = hs.get(RoomMemberStore)
    store = hs.get(EventStore)
    before = await store.get_max_stream_position()
    await hs.get(RoomMemberHandler).join(BOB, room_id)
    await send(hs, room_id, "hello bob")
    after = await store.get_max_stream_position()
    assert await members.get_rooms_for_user(BOB) == {room_id}
    assert await members.get_users_in_room(room_id) == {ALICE, BOB}
    changes = await members.get_membership_changes_for_user(BOB, before, after)
    assert [(c.room_id, c.membership) for c in changes] == [(room_id, "join")]
    timeline = await store.get_room_events_between(room_id, before, after, 10)
    assert [s.event.type for s in timeline] == ["m.room.message", "m.room.member"]
    visible = await filter_events_for_client(hs, "@stranger:test.local", timeline)
    assert visible == []
    assert await filter_events_for_client(hs, BOB, timeline) == timeline
    state = await hs.get(RoomStateHandler).get_current_state_ids(room_id)
    assert state[("m.room.member", BOB)] == timeline[1].event_id


@pytest_twisted.ensureDeferred
async def test_a_restart_resumes_the_dag(config_path: Path) -> None:
    first = await start(config_path)
    try:
        room_id = await new_room(first)
        last = await send(first, room_id, "before restart")
    finally:
        await first.shutdown()
    second = await start(config_path)
    try:
        after = await send(second, room_id, "after restart")
        stored = await second.get(EventStore).get_event(after)
        assert stored is not None and stored.event.prev_event_ids == [last]
    finally:
        await second.shutdown()

