"""The room DAG through the event pipeline, in process: two homeservers on real storage
joined by the in-memory federation of tests/support/harness.py.

Forks are made by partitioning the two servers, so every case is deterministic: each
server's clock only moves when the test moves it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_twisted

from homeserver.events.builder import build_event
from homeserver.events.event import Event
from homeserver.events.room_versions import RoomVersion
from homeserver.events.stateres import resolve_state
from homeserver.handlers.accounts.auth import Requester
from homeserver.handlers.rooms.history import HistoryHandler, RoomEventFilter
from homeserver.handlers.rooms.room_create import RoomCreationHandler, parse_create_room
from homeserver.handlers.rooms.room_state import RoomStateHandler
from homeserver.pipeline import Outcome
from homeserver.sync.handler import SyncHandler
from homeserver.sync.provider import SyncRequest
from storage.stores.events import EventStore, StoredEvent
from storage.stores.room_dag import RoomDagStore
from storage.stores.state import StateMap
from tests.support.databases import ENGINES
from tests.support.harness import HarnessServer, InMemoryFederation, start_server

ALICE = "@alice:a.test"
BOB = "@bob:b.test"
TOPIC = ("m.room.topic", "")


@attrs.define
class Pair:
    a: HarnessServer
    b: HarnessServer
    fed: InMemoryFederation
    room_id: str = ""


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_twisted.async_yield_fixture
async def pair(engine: str, tmp_path: Path) -> AsyncIterator[Pair]:
    a = await start_server(tmp_path, engine, "a.test")
    b = await start_server(tmp_path, engine, "b.test")
    fed = InMemoryFederation([a, b])
    pair = Pair(a, b, fed)
    pair.room_id = await _shared_room(pair)
    yield pair
    await a.stop()
    await b.stop()


async def _shared_room(pair: Pair) -> str:
    """Alice's public room on A; Bob joins from B and gets power level 50."""
    pair.a.tick()
    request = parse_create_room({"preset": "public_chat"}, "12")
    room_id, _ = await pair.a.hs.get(RoomCreationHandler).create_room(ALICE, request)
    results = await pair.fed.flush()
    assert results and all(r.outcome is Outcome.ACCEPTED for r in results), results
    await pair.b.send(room_id, BOB, "m.room.member", {"membership": "join"}, BOB)
    assert [r.outcome for r in await pair.fed.flush()] == [Outcome.ACCEPTED]
    levels = await pair.a.hs.get(RoomStateHandler).get_current_state_event(room_id, "m.room.power_levels")
    assert levels is not None
    content = dict(levels.event.content)
    content["users"] = {**content.get("users", {}), BOB: 50}
    await pair.a.send(room_id, ALICE, "m.room.power_levels", content, "")
    assert [r.outcome for r in await pair.fed.flush()] == [Outcome.ACCEPTED]
    return room_id


async def current_state(server: HarnessServer, room_id: str) -> StateMap:
    return await server.hs.get(RoomStateHandler).get_current_state_ids(room_id)


async def extremities(server: HarnessServer, room_id: str) -> set[str]:
    return set(await server.hs.get(RoomDagStore).get_forward_extremities(room_id))


async def stored(server: HarnessServer, event_id: str) -> StoredEvent:
    found = await server.hs.get(EventStore).get_event(event_id)
    assert found is not None
    return found


async def kernel_resolution(server: HarnessServer, room_id: str, tips: set[str]) -> StateMap:
    """What the kernel alone says the state over ``tips`` is."""
    states = [await server.hs.get(RoomStateHandler).get_state_ids_after_event(await stored(server, t))
              for t in sorted(tips)]
    wanted = {i for state in states for i in state.values()}
    wanted |= await server.hs.get(RoomDagStore).get_auth_chain_ids(wanted)
    events = await server.hs.get(EventStore).get_events(wanted)
    room_version = next(iter(events.values())).event.room_version
    return resolve_state(room_version, states, {i: s.event for i, s in events.items()})


def requester(user_id: str) -> Requester:
    return Requester(user_id=user_id, device_id="DEV", is_guest=False, is_admin=False, access_token_id=1)


@pytest_twisted.ensureDeferred
async def test_two_branches_merged_by_a_local_event_hold_the_kernels_resolution(pair: Pair) -> None:
    a, b, room = pair.a, pair.b, pair.room_id
    pair.fed.partitioned = True
    topic = await a.send(room, ALICE, "m.room.topic", {"topic": "from A"}, "")
    name = await b.send(room, BOB, "m.room.name", {"name": "from B"}, "")
    await b.send(room, BOB, "m.room.message", {"msgtype": "m.text", "body": "on B's branch"})
    pair.fed.partitioned = False
    results = await pair.fed.flush()
    assert {r.outcome for r in results} == {Outcome.ACCEPTED}
    tips = await extremities(a, room)
    assert len(tips) == 2 and tips == await extremities(b, room)
    expected = await kernel_resolution(a, room, tips)
    assert expected[TOPIC] == topic.event_id and expected[("m.room.name", "")] == name.event_id
    assert await current_state(a, room) == expected
    assert await current_state(b, room) == expected

    merge = await a.send(room, ALICE, "m.room.message", {"msgtype": "m.text", "body": "merge"})
    assert set(merge.event.prev_event_ids) == tips
    assert merge.depth == max([(await stored(a, t)).depth for t in tips]) + 1
    assert await extremities(a, room) == {merge.event_id}
    assert await a.hs.get(RoomStateHandler).get_state_ids_after_event(merge) == expected
    await pair.fed.flush()
    assert await extremities(b, room) == {merge.event_id}
    assert await current_state(b, room) == expected


async def _ban_against_topic(pair: Pair) -> tuple[StoredEvent, StoredEvent]:
    """A fork: on A, Alice bans Bob; on B, meanwhile, Bob sets the room's first topic."""
    pair.fed.partitioned = True
    ban = await pair.a.send(pair.room_id, ALICE, "m.room.member", {"membership": "ban"}, BOB)
    topic = await pair.b.send(pair.room_id, BOB, "m.room.topic", {"topic": "Bob's topic"}, "")
    assert (await current_state(pair.b, pair.room_id))[TOPIC] == topic.event_id
    pair.fed.partitioned = False
    return ban, topic


@pytest_twisted.ensureDeferred
async def test_a_state_reset_removes_a_key_from_the_current_state(pair: Pair) -> None:
    b, room = pair.b, pair.room_id
    ban, topic = await _ban_against_topic(pair)
    results = {r.event_id: r.outcome for r in await pair.fed.flush()}
    assert results[ban.event_id] is Outcome.ACCEPTED  # on B: the ban passes the current state
    # Resolution applies the ban first; Bob's topic then fails auth, and the key, which
    # only Bob's branch had, leaves B's current state.
    state = await current_state(b, room)
    assert TOPIC not in state
    assert state[("m.room.member", BOB)] == ban.event_id
    assert state == await kernel_resolution(b, room, await extremities(b, room))
    assert BOB not in await b.hs.get(RoomStateHandler).members.get_users_in_room(room)


@pytest_twisted.ensureDeferred
async def test_a_soft_failed_event_stays_in_the_dag_but_out_of_state_and_sync(pair: Pair) -> None:
    a, room = pair.a, pair.room_id
    ban, topic = await _ban_against_topic(pair)
    results = {r.event_id: r for r in await pair.fed.flush()}
    # On A, Bob is already banned: his topic passes against the state before it (the
    # fork point) but not against A's current state.
    assert results[topic.event_id].outcome is Outcome.SOFT_FAILED
    held = await stored(a, topic.event_id)
    assert held.soft_failed and held.state_group is not None
    assert await a.hs.get(RoomDagStore).get_prev_event_ids([topic.event_id]) == {
        topic.event_id: topic.event.prev_event_ids}
    assert TOPIC not in await current_state(a, room)
    assert await extremities(a, room) == {ban.event_id}
    timeline = await a.hs.get(EventStore).get_room_events_between(room, 0, 10**9, 100)
    assert topic.event_id not in {e.event_id for e in timeline}
    sync = await a.hs.get(SyncHandler).sync(SyncRequest(ALICE, "DEV", {}), 0)
    joined = sync["rooms"]["join"][room]
    seen = [e["event_id"] for e in joined["timeline"]["events"]] + [e["event_id"] for e in joined["state"]["events"]]
    assert ban.event_id in seen and topic.event_id not in seen


@pytest_twisted.ensureDeferred
async def test_an_outlier_is_stored_without_state_and_later_joins_the_dag(pair: Pair) -> None:
    a, b, room = pair.a, pair.b, pair.room_id
    pair.fed.partitioned = True
    topic = await a.send(room, ALICE, "m.room.topic", {"topic": "fetched on its own"}, "")
    (result,) = await b.pipeline.store_outliers(room, [topic.event], a.name)
    assert result.outcome is Outcome.OUTLIER
    outlier = await stored(b, topic.event_id)
    assert outlier.outlier and outlier.state_group is None and outlier.stream_ordering < 0
    assert TOPIC not in await current_state(b, room)
    position = await b.hs.get(EventStore).get_max_stream_position()
    timeline = await b.hs.get(EventStore).get_room_events_between(room, -(10**9), position, 100)
    assert topic.event_id not in {e.event_id for e in timeline}

    (result,) = await b.pipeline.submit_remote(room, [topic.event], a.name)
    assert result.outcome is Outcome.ACCEPTED
    joined = await stored(b, topic.event_id)
    assert not joined.outlier and joined.state_group is not None
    assert joined.stream_ordering > position  # it enters the live stream now, so sync sees it
    assert (await current_state(b, room))[TOPIC] == topic.event_id
    assert await extremities(b, room) == {topic.event_id}


def _forge(server: HarnessServer, room_version: RoomVersion, room: str, prev: list[str], auth: list[str],
           depth: int, event_type: str, content: dict[str, Any], state_key: str) -> Event:
    """An event Bob's server signs without asking its own pipeline (which would refuse it)."""
    server.tick()
    return build_event(
        room_version=room_version,
        event_type=event_type, sender=BOB, content=content, room_id=room, prev_event_ids=prev,
        auth_event_ids=auth, depth=depth, origin_server_ts=int(server.clock.seconds() * 1000),
        key=server.hs.signing_key, state_key=state_key)


@pytest_twisted.ensureDeferred
async def test_a_rejected_event_and_one_citing_it_are_both_rejected(pair: Pair) -> None:
    a, b, room = pair.a, pair.b, pair.room_id
    state = await current_state(a, room)
    tips = sorted(await extremities(a, room))
    depth = max([(await stored(a, t)).depth for t in tips]) + 1
    levels_event = (await stored(a, state[("m.room.power_levels", "")])).event
    levels, version = levels_event.content, levels_event.room_version
    # Bob (power 50) makes himself 100: more than he has, so the auth rules refuse it.
    grab = _forge(b, version, room, tips, [state[("m.room.power_levels", "")], state[("m.room.member", BOB)]],
                  depth, "m.room.power_levels", {**levels, "users": {**levels["users"], BOB: 100}}, "")
    (result,) = await a.pipeline.submit_remote(room, [grab], b.name)
    assert result.outcome is Outcome.REJECTED and result.reason
    # Bob's next event cites the rejected one among its auth events.
    topic = _forge(b, version, room, [grab.event_id], [grab.event_id, state[("m.room.member", BOB)]], depth + 1,
                   "m.room.topic", {"topic": "on a rejected base"}, "")
    (cited,) = await a.pipeline.submit_remote(room, [topic], b.name)
    assert cited.outcome is Outcome.REJECTED
    assert cited.reason is not None and grab.event_id in cited.reason
    reasons = await a.hs.get(RoomDagStore).get_rejection_reasons([grab.event_id, topic.event_id])
    assert set(reasons) == {grab.event_id, topic.event_id}
    for event in (grab, topic):
        held = await stored(a, event.event_id)
        assert held.rejected and not held.in_timeline
    assert await current_state(a, room) == state
    assert await extremities(a, room) == set(tips)


@pytest_twisted.ensureDeferred
async def test_messages_pages_in_topological_order_when_an_older_event_arrives_late(pair: Pair) -> None:
    a, b, room = pair.a, pair.b, pair.room_id
    pair.fed.partitioned = True
    late = await b.send(room, BOB, "m.room.message", {"msgtype": "m.text", "body": "written early"})
    ours = [await a.send(room, ALICE, "m.room.message", {"msgtype": "m.text", "body": f"a{i}"})
            for i in range(4)]
    pair.fed.partitioned = False
    await pair.fed.flush()
    arrived = await stored(a, late.event_id)
    assert arrived.stream_ordering > ours[-1].stream_ordering  # last in the stream...
    assert arrived.depth == ours[0].depth  # ...but as early as Alice's first message
    page = await a.hs.get(HistoryHandler).get_messages(requester(ALICE), room, None, None, "b", 10,
                                                       RoomEventFilter())
    order = [e["event_id"] for e in page["chunk"]]
    expected_head = [ours[3].event_id, ours[2].event_id, ours[1].event_id, late.event_id, ours[0].event_id]
    assert order[:5] == expected_head
    # Paging on from the end of a short page continues in the same order.
    first = await a.hs.get(HistoryHandler).get_messages(requester(ALICE), room, None, None, "b", 3,
                                                        RoomEventFilter())
    rest = await a.hs.get(HistoryHandler).get_messages(requester(ALICE), room, first["end"], None, "b", 2,
                                                       RoomEventFilter())
    assert [e["event_id"] for e in first["chunk"] + rest["chunk"]] == expected_head
    forwards = await a.hs.get(HistoryHandler).get_messages(requester(ALICE), room, rest["end"], None, "f", 5,
                                                           RoomEventFilter())
    assert [e["event_id"] for e in forwards["chunk"]] == list(reversed(expected_head))
