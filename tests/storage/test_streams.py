"""StreamIdGenerator: seeding from the table, gaps holding the token back, listeners."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import pytest
import pytest_twisted
from twisted.internet import defer

from storage.engine import Database, Transaction
from storage.streams import StreamIdGenerator

T = TypeVar("T")


async def _make_stream_table(db: Database, ids: list[int]) -> None:
    def create(txn: Transaction) -> None:
        txn.execute("CREATE TABLE stream_rows (stream_id BIGINT PRIMARY KEY, body TEXT)")
        txn.executemany("INSERT INTO stream_rows (stream_id) VALUES (?)", [(i,) for i in ids])

    await db.run_interaction("create_stream_rows", create)


async def _enter(cm: AbstractAsyncContextManager[T]) -> T:
    return await cm.__aenter__()


async def _leave(cm: AbstractAsyncContextManager[Any]) -> None:
    await cm.__aexit__(None, None, None)


@pytest_twisted.ensureDeferred
async def test_starts_from_table_max(database: Database) -> None:
    await _make_stream_table(database, [3, 9, 5])
    gen = await StreamIdGenerator.create(database, "stream_rows", "stream_id")
    assert gen.get_current_token() == 9
    async with gen.get_next() as stream_id:
        assert stream_id == 10
    assert gen.get_current_token() == 10


@pytest_twisted.ensureDeferred
async def test_empty_table_starts_at_zero(database: Database) -> None:
    await _make_stream_table(database, [])
    gen = await StreamIdGenerator.create(database, "stream_rows", "stream_id")
    assert gen.get_current_token() == 0
    async with gen.get_next_mult(3) as ids:
        assert ids == [1, 2, 3]
        assert gen.get_current_token() == 0
    assert gen.get_current_token() == 3


@pytest_twisted.ensureDeferred
async def test_token_never_passes_an_unfinished_id(database: Database) -> None:
    await _make_stream_table(database, [])
    gen = await StreamIdGenerator.create(database, "stream_rows", "stream_id")
    advances: list[int] = []
    gen.add_advance_listener(advances.append)

    first, second, third = gen.get_next(), gen.get_next(), gen.get_next_mult(2)
    assert await _enter(first) == 1
    assert await _enter(second) == 2
    assert await _enter(third) == [3, 4]

    await _leave(second)
    await _leave(third)
    assert gen.get_current_token() == 0  # 1 is still being written
    assert advances == []

    await _leave(first)
    assert gen.get_current_token() == 4
    assert advances == [4]


@pytest_twisted.ensureDeferred
async def test_token_advances_stepwise_up_to_each_gap(database: Database) -> None:
    await _make_stream_table(database, [])
    gen = await StreamIdGenerator.create(database, "stream_rows", "stream_id")
    advances: list[int] = []
    gen.add_advance_listener(advances.append)
    contexts = [gen.get_next() for _ in range(4)]
    for cm in contexts:
        await _enter(cm)

    await _leave(contexts[0])  # 1 done
    await _leave(contexts[2])  # 3 done, 2 still open
    assert gen.get_current_token() == 1
    await _leave(contexts[1])  # 2 done -> up to 3
    assert gen.get_current_token() == 3
    await _leave(contexts[3])
    assert advances == [1, 3, 4]


@pytest_twisted.ensureDeferred
async def test_failed_writer_does_not_block_the_stream(database: Database) -> None:
    await _make_stream_table(database, [])
    gen = await StreamIdGenerator.create(database, "stream_rows", "stream_id")
    with pytest.raises(RuntimeError):
        async with gen.get_next() as stream_id:
            assert stream_id == 1
            raise RuntimeError("write failed")
    assert gen.get_current_token() == 1
    async with gen.get_next() as stream_id:
        assert stream_id == 2


@pytest_twisted.ensureDeferred
async def test_broken_listener_does_not_stop_others(database: Database) -> None:
    await _make_stream_table(database, [])
    gen = await StreamIdGenerator.create(database, "stream_rows", "stream_id")
    seen: list[int] = []

    def broken(token: int) -> None:
        raise RuntimeError("listener bug")

    gen.add_advance_listener(broken)
    gen.add_advance_listener(seen.append)
    async with gen.get_next():
        pass
    assert seen == [1]


@pytest_twisted.ensureDeferred
async def test_every_id_up_to_token_is_readable_when_listeners_fire(
    database: Database,
) -> None:
    """Concurrent real writes: whenever the token advances, all rows up to it exist."""
    await _make_stream_table(database, [])
    gen = await StreamIdGenerator.create(database, "stream_rows", "stream_id")
    reads: list[defer.Deferred[None]] = []
    problems: list[str] = []

    async def check(token: int) -> None:
        rows = await database.execute(
            "check", "SELECT COUNT(*) FROM stream_rows WHERE stream_id <= ?", token
        )
        if rows != [(token,)]:
            problems.append(f"token {token} but rows {rows}")

    gen.add_advance_listener(lambda token: reads.append(defer.ensureDeferred(check(token))))

    async def write(body: str) -> None:
        async with gen.get_next() as stream_id:
            await database.execute(
                "write", "INSERT INTO stream_rows (stream_id, body) VALUES (?, ?)", stream_id, body
            )

    await defer.gatherResults([defer.ensureDeferred(write(f"row {i}")) for i in range(25)])
    await defer.gatherResults(reads)
    assert gen.get_current_token() == 25
    assert reads  # the listener ran
    assert problems == []

    # A restart picks up where the stream left off.
    restarted = await StreamIdGenerator.create(database, "stream_rows", "stream_id")
    assert restarted.get_current_token() == 25


@pytest_twisted.ensureDeferred
async def test_rejects_non_identifier_names(database: Database) -> None:
    with pytest.raises(ValueError):
        await StreamIdGenerator.create(database, "rows; DROP TABLE x", "stream_id")
