"""The sync core's fast path gives the same answer as the full build (issue 16).

A woken connection skips the providers whose stream did not move (``still``) and takes its
joined rooms from the entries their readers share (providers/shared_rooms.py); this builds
each incremental sync both ways, in process on real storage (both engines), and compares.
``unsigned.age`` is left out of the comparison: it is the time of formatting, not a fact
about the event.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_twisted

from homeserver.handlers.rooms.room_create import RoomCreationHandler, parse_create_room
from homeserver.http.resource import encode_json
from homeserver.pipeline import EventSpec
from homeserver.sync.builder import SyncBuilder, _still
from homeserver.sync.encoded import EncodedEvent, encode_spliced
from homeserver.sync.provider import StreamToken, SyncRequest
from homeserver.sync.providers.shared_rooms import SharedRooms
from storage.stores.account_data import AccountDataStore
from tests.support.databases import ENGINES
from tests.support.harness import HarnessServer, start_server

ALICE = "@alice:a.test"
BOB = "@bob:a.test"
LAZY = {"room": {"state": {"lazy_load_members": True}, "timeline": {"limit": 2}}}


@attrs.define
class Room:
    server: HarnessServer
    room_id: str

    @property
    def builder(self) -> SyncBuilder:
        return self.server.hs.get(SyncBuilder)

    async def message(self, body: str, sender: str = ALICE, txn: bool = False) -> None:
        self.server.tick()
        spec = EventSpec("m.room.message", sender, {"msgtype": "m.text", "body": body},
                         txn_scope=f"{sender}|DEV" if txn else None, txn_id=f"t-{body}" if txn else None)
        await self.server.pipeline.submit_local(self.room_id, [spec])

    async def token(self) -> StreamToken:
        return await self.builder.current_token()


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_twisted.async_yield_fixture
async def room(engine: str, tmp_path: Path) -> AsyncIterator[Room]:
    server = await start_server(tmp_path, engine, "a.test")
    server.tick()
    created = parse_create_room({"preset": "public_chat"}, "12")
    room_id, _ = await server.hs.get(RoomCreationHandler).create_room(ALICE, created)
    await server.send(room_id, BOB, "m.room.member", {"membership": "join"}, BOB)
    yield Room(server, room_id)
    await server.stop()


def spliced_events(value: Any) -> list[EncodedEvent]:
    if isinstance(value, EncodedEvent):
        return [value]
    if isinstance(value, dict):
        return [e for v in value.values() for e in spliced_events(v)]
    if isinstance(value, list):
        return [e for v in value for e in spliced_events(v)]
    return []


def without_age(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_age(v) for k, v in value.items() if k != "age"}
    if isinstance(value, list):
        return [without_age(v) for v in value]
    return value


async def both_paths(room: Room, user_id: str, since: StreamToken, sync_filter: dict[str, Any],
                     device_id: str | None = "DEV") -> tuple[dict[str, Any], int]:
    """The full and the fast answer (asserted equal) and how many providers the fast one skipped."""
    request = SyncRequest(user_id=user_id, device_id=device_id, filter=sync_filter, since=since)
    upto = await room.builder.current_token()
    full, full_context = await room.builder.build(request, upto, skip_still=False)
    fast, fast_context = await room.builder.build(request, upto)
    assert without_age(fast) == without_age(full)
    # The transports' build: shared events serialised once and spliced into the bytes.
    encoded, _ = await room.builder.build(request, upto, encoded=True)
    written = json.loads(encode_spliced(encoded, encode_json))
    assert without_age(written) == without_age(full)
    assert all(isinstance(e.own.get("age"), int) for e in spliced_events(encoded))
    assert fast_context["joined_rooms"] == full_context["joined_rooms"]
    skipped = sum(1 for provider in room.builder.providers
                  if provider.stream != "events" and upto.positions[provider.stream] == since.get(provider.stream)
                  and _still(provider, since.get(provider.stream) or 0, upto.positions[provider.stream],
                             fast_context))
    return full, skipped


async def written_answer(room: Room, user_id: str, since: StreamToken,
                         sync_filter: dict[str, Any]) -> dict[str, Any]:
    """The answer as the transports write it (encoded, spliced)."""
    request = SyncRequest(user_id=user_id, device_id="DEV", filter=sync_filter, since=since)
    encoded, _ = await room.builder.build(request, await room.builder.current_token(), encoded=True)
    answer: dict[str, Any] = json.loads(encode_spliced(encoded, encode_json))
    return answer


@pytest_twisted.ensureDeferred
async def test_a_message_gives_the_same_answer_both_ways(room: Room) -> None:
    since = await room.token()
    await room.message("hello")
    for sync_filter in ({}, LAZY):
        answer, skipped = await both_paths(room, BOB, since, sync_filter)
        timeline = answer["rooms"]["join"][room.room_id]["timeline"]
        assert [e["content"]["body"] for e in timeline["events"]] == ["hello"]
        assert skipped >= 4  # account data, receipts, typing, presence, MLS did not move
    # The fast answers came from the room's shared entry (one per filter).
    assert len(room.server.hs.get(SharedRooms)) == 2
    encoded, _ = await room.builder.build(
        SyncRequest(user_id=BOB, device_id="DEV", filter={}, since=since), await room.token(), encoded=True)
    assert len(spliced_events(encoded)) == 1  # the message stands in the response as shared text


@pytest_twisted.ensureDeferred
async def test_the_senders_transaction_id_and_a_limited_timeline_both_ways(room: Room) -> None:
    since = await room.token()
    for body in ("one", "two", "three"):
        await room.message(body, sender=BOB, txn=True)
    answer, _ = await both_paths(room, BOB, since, LAZY)
    timeline = answer["rooms"]["join"][room.room_id]["timeline"]
    assert timeline["limited"] is True
    assert [e["unsigned"].get("transaction_id") for e in timeline["events"]] == ["t-two", "t-three"]
    other, _ = await both_paths(room, ALICE, since, LAZY)
    events = other["rooms"]["join"][room.room_id]["timeline"]["events"]
    assert all("transaction_id" not in e["unsigned"] for e in events)
    assert "transaction_id" in str(bob_written := await written_answer(room, BOB, since, LAZY))
    assert "transaction_id" not in str(await written_answer(room, ALICE, since, LAZY)), bob_written


@pytest_twisted.ensureDeferred
async def test_state_joins_and_other_streams_both_ways(room: Room) -> None:
    since = await room.token()
    await room.server.send(room.room_id, ALICE, "m.room.topic", {"topic": "t"}, "")
    await room.server.send(room.room_id, "@carol:a.test", "m.room.member", {"membership": "join"},
                           "@carol:a.test")
    await room.message("after")
    answer, _ = await both_paths(room, BOB, since, LAZY)
    assert answer["rooms"]["join"][room.room_id]["summary"]["m.joined_member_count"] == 3
    # Account data moves too: the full build runs that provider on both paths.
    await room.server.hs.get(AccountDataStore).put_account_data(BOB, None, "org.example", {"a": 1})
    answer, skipped = await both_paths(room, BOB, since, {})
    assert answer["account_data"]["events"] == [{"type": "org.example", "content": {"a": 1}}]
    # A member who joined inside the window gets the room as newly joined, both ways.
    answer, _ = await both_paths(room, "@carol:a.test", since, LAZY, device_id=None)
    assert room.room_id in answer["rooms"]["join"]
