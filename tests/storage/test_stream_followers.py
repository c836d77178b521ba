"""Streams in a worker: a followed stream refuses writes and moves only with the writer's
positions, which reach the registry's listeners like local advances (docs/workers.md)."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted

from storage.engine import Database, Transaction
from storage.streams import NotTheWriter, StreamAdvance, Streams


class Host:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, cls: type) -> Any:
        raise AssertionError("not needed")


async def _table(db: Database, ids: list[int]) -> None:
    def create(txn: Transaction) -> None:
        txn.execute("CREATE TABLE follow_rows (stream_id BIGINT PRIMARY KEY)")
        txn.executemany("INSERT INTO follow_rows (stream_id) VALUES (?)", [(i,) for i in ids])

    await db.run_interaction("create_follow_rows", create)


@pytest_twisted.ensureDeferred
async def test_a_followed_stream_refuses_writes_and_follows_the_writer(database: Database) -> None:
    await _table(database, [1, 2, 3])
    streams = Streams(Host(database))
    heard: list[StreamAdvance] = []
    streams.add_listener(heard.append)
    streams.follow("rows", "main")
    assert not streams.writes_here("rows")
    # A position heard before the writer object exists is kept, and trusted over MAX(column).
    streams.replicated(StreamAdvance("rows", 2, frozenset({"@a:x"}), frozenset()))
    assert streams.current_position("rows") == 2
    writer = await streams.writer("rows", "follow_rows", "stream_id")
    assert writer.get_current_token() == 2
    with pytest.raises(NotTheWriter):
        async with writer.allocate(1):
            pass
    with pytest.raises(NotTheWriter):
        writer.announce(3)
    streams.replicated(StreamAdvance("rows", 5, frozenset(), frozenset({"!r:x"})))
    assert writer.get_current_token() == 5
    streams.replicated(StreamAdvance("rows", 4, frozenset(), frozenset()))  # late, out of order
    assert writer.get_current_token() == 5  # positions never go back
    assert [a.position for a in heard] == [2, 5, 4]  # every advance reaches the listeners
    assert streams.local_positions() == {}  # nothing of ours to publish


@pytest_twisted.ensureDeferred
async def test_an_in_memory_follower_takes_a_restarted_writers_lower_positions(
    database: Database,
) -> None:
    streams = Streams(Host(database))
    streams.follow("typing", "main")
    typing = streams.in_memory("typing")
    streams.replicated(StreamAdvance("typing", 40, frozenset(), frozenset()))
    streams.replicated(StreamAdvance("typing", 3, frozenset(), frozenset(), everyone=True))
    assert typing.get_current_token() == 3
    with pytest.raises(NotTheWriter):
        typing.advance(rooms=["!r:x"])


@pytest_twisted.ensureDeferred
async def test_replicated_advances_of_our_own_streams_are_ignored(database: Database) -> None:
    await _table(database, [7])
    streams = Streams(Host(database))
    heard: list[StreamAdvance] = []
    streams.add_listener(heard.append)
    writer = await streams.writer("rows", "follow_rows", "stream_id")
    streams.replicated(StreamAdvance("rows", 100, frozenset(), frozenset()))
    assert writer.get_current_token() == 7 and heard == []
    async with writer.allocate(1) as ids:
        pass
    writer.announce(ids[-1])
    assert streams.local_positions() == {"rows": 8}
