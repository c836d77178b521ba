"""A stream several instances write (event persisters, storage/sharded_stream.py): ids from one
PostgreSQL sequence, each writer's own position, and the token every process reads up to, the
minimum over the writers. Three registries on one database stand for three processes; what
the Redis channel carries between them (each writer's own advances) is passed by hand."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted

from storage.engine import Database
from storage.migrate import prepare_database
from storage.sharded_stream import STATE_GROUPS_SEQUENCE, SharedSequence, shard_stream
from storage.streams import NotTheWriter, StreamAdvance, Streams, StreamWriter

WRITERS = ["p1", "p2"]


class Host:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, cls: type) -> Any:
        raise AssertionError("not needed")


class Process:
    """One process's registry, what it hears locally, and what it publishes."""

    def __init__(self, db: Database, name: str) -> None:
        self.name = name
        self.streams = Streams(Host(db))
        self.heard: list[StreamAdvance] = []
        self.published: list[StreamAdvance] = []
        self.streams.add_listener(self.heard.append)
        self.streams.add_own_listener(self.published.append)
        shard_stream(self.streams, db, "events", name, WRITERS)
        self.peers: list[Process] = []

    async def writer(self) -> StreamWriter:
        return await self.streams.writer("events", "events", "stream_ordering")

    def deliver(self) -> None:
        """The channel: our published advances reach every other process."""
        while self.published:
            advance = self.published.pop(0)
            for peer in self.peers:
                peer.streams.replicated_from(self.name, advance)


def connect(*processes: Process) -> None:
    for process in processes:
        process.peers = [p for p in processes if p is not process]


def settle(*processes: Process) -> None:
    for _ in range(10):
        for process in processes:
            process.deliver()


async def write(db: Database, ids: list[int]) -> None:
    """Rows at these stream positions, as a persister's transaction writes them."""
    for stream_id in ids:
        await db.execute(
            "test_event_row",
            "INSERT INTO events (stream_ordering, event_id, room_id, type, sender, json, depth,"
            " origin_server_ts, received_ts, state_group) VALUES (?, ?, '!r:x', 'm.room.message', '@a:x',"
            " '{}', 1, 0, 0, 0)",
            stream_id, f"$e{stream_id}",
        )


@pytest_twisted.ensureDeferred
async def test_writers_share_one_sequence_and_readers_see_the_minimum(database: Database) -> None:
    if database.engine_name != "psycopg2":
        pytest.skip("event persisters need PostgreSQL (SQLite refuses workers)")
    await prepare_database(database)
    await write(database, [1, 2, 3])  # a single writer's ids from before the stream was sharded
    p1, p2, reader = Process(database, "p1"), Process(database, "p2"), Process(database, "reader")
    connect(p1, p2, reader)
    w1, w2, follower = await p1.writer(), await p2.writer(), await reader.writer()
    assert {w1.get_current_token(), w2.get_current_token(), follower.get_current_token()} == {3}
    with pytest.raises(NotTheWriter):
        async with follower.allocate(1):
            pass

    # p2 holds an id in flight: p1's later write is below the token until p2 finishes.
    async with w2.allocate(1) as slow:
        async with w1.allocate(2) as fast:
            await write(database, fast)
        w1.announce(fast[-1], rooms={"!one:x"})
        assert slow[0] > 3 and fast[0] > slow[0]  # one sequence, past the old ids
        settle(p1, p2, reader)
        assert follower.get_current_token() < slow[0]
        assert w1.get_current_token() < slow[0]
        assert not any("!one:x" in a.rooms for a in reader.heard)  # never woken for what it cannot read
        await write(database, slow)
    w2.announce(slow[0], rooms={"!two:x"})
    settle(p1, p2, reader)
    # Every process's token now covers both writes, and each process heard both rooms.
    for process, writer in ((p1, w1), (p2, w2), (reader, follower)):
        assert writer.get_current_token() == fast[-1]
        rooms = set().union(*(a.rooms for a in process.heard))
        assert {"!one:x", "!two:x"} <= rooms
    # Positions only grow, and every token handed out is at or below every later one.
    tokens = [a.position for a in reader.heard]
    assert tokens == sorted(tokens)


@pytest_twisted.ensureDeferred
async def test_an_idle_writer_does_not_hold_the_stream_back(database: Database) -> None:
    if database.engine_name != "psycopg2":
        pytest.skip("event persisters need PostgreSQL (SQLite refuses workers)")
    await prepare_database(database)
    p1, p2, reader = Process(database, "p1"), Process(database, "p2"), Process(database, "reader")
    connect(p1, p2, reader)
    w1, _, follower = await p1.writer(), await p2.writer(), await reader.writer()
    for _ in range(5):  # p2 writes nothing at all
        async with w1.allocate(1) as ids:
            await write(database, ids)
        w1.announce(ids[-1], users={"@u:x"})
        settle(p1, p2, reader)
        assert follower.get_current_token() == ids[-1]
        assert "@u:x" in reader.heard[-1].users


@pytest_twisted.ensureDeferred
async def test_shared_sequences_never_repeat_an_id(database: Database) -> None:
    if database.engine_name != "psycopg2":
        pytest.skip("event persisters need PostgreSQL (SQLite refuses workers)")
    await prepare_database(database)
    first, second = SharedSequence(database, STATE_GROUPS_SEQUENCE), SharedSequence(database, STATE_GROUPS_SEQUENCE)
    a = await first.allocate(3, 10)  # ten groups stored before
    b = await second.allocate(3, 10)
    c = await first.allocate(2, 10)
    assert min(a) > 10 and len(set(a + b + c)) == 8
