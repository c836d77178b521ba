"""Streams: id allocation, the "persisted up to" position, and the one writer API.

A stream's current token is the highest id such that every id at or below it has
finished being written. Readers (sync, the notifier) only ever look at ids up to the
current token, so a slow writer holding an earlier id holds the token back instead
of letting a client skip past it forever.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import attrs
from twisted.internet.defer import Deferred

from storage.engine import Database
from storage.host import StorageHost

logger = logging.getLogger(__name__)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class StreamIdGenerator:
    """Hands out increasing stream ids for one table column, in one process.

    Allocation is in memory, seeded from MAX(column) at start. Ids are finished when
    the `async with` block exits (after the writer's transaction committed, or failed:
    a failed write leaves a harmless hole, and must not block the stream). All methods
    run on the reactor thread, so no locking is needed.

    Workers (docs/workers.md): each stream keeps one writer instance. In the other
    processes the generator ``follows`` it: allocation raises NotTheWriter, and the
    token moves only by ``advance_to(n)`` with the positions the writer publishes.
    """

    def __init__(self, name: str, current: int, *, follows: str | None = None) -> None:
        self.name = name
        #: The instance that writes this stream when it is not this process (a worker follows it).
        self.follows = follows
        self._last_allocated = current
        self._current_token = current
        # Ids handed out and not yet finished, in allocation (= increasing) order.
        self._unfinished: dict[int, None] = {}
        self._listeners: list[Callable[[int], None]] = []

    @classmethod
    async def create(cls, db: Database, table: str, column: str, *,
                     follows: str | None = None) -> StreamIdGenerator:
        """Start from the highest id already stored in table.column (0 when empty)."""
        for identifier in (table, column):
            if not _IDENTIFIER.match(identifier):
                raise ValueError(f"not a plain SQL identifier: {identifier!r}")
        rows = await db.execute(
            f"stream_max_{table}_{column}", f"SELECT MAX({column}) FROM {table}"
        )
        current = rows[0][0] if rows and rows[0][0] is not None else 0
        return cls(f"{table}.{column}", int(current), follows=follows)

    def get_next(self) -> AbstractAsyncContextManager[int]:
        """`async with gen.get_next() as stream_id:` write the row inside the block."""
        return self._allocate_one()

    def get_next_mult(self, n: int) -> AbstractAsyncContextManager[list[int]]:
        """Like get_next, for n consecutive ids written together."""
        if n < 1:
            raise ValueError("need at least one stream id")
        return self._allocate_many(n)

    @asynccontextmanager
    async def _allocate_one(self) -> AsyncIterator[int]:
        async with self._allocate_many(1) as ids:
            yield ids[0]

    @asynccontextmanager
    async def _allocate_many(self, n: int) -> AsyncIterator[list[int]]:
        self._refuse_if_following()
        first = self._last_allocated + 1
        ids = list(range(first, first + n))
        self._last_allocated = ids[-1]
        for stream_id in ids:
            self._unfinished[stream_id] = None
        try:
            yield ids
        finally:
            self._finish(ids)

    def _finish(self, ids: list[int]) -> None:
        for stream_id in ids:
            del self._unfinished[stream_id]
        if self._unfinished:
            new_token = next(iter(self._unfinished)) - 1
        else:
            new_token = self._last_allocated
        if new_token > self._current_token:
            self._current_token = new_token
            self._notify(new_token)

    def _notify(self, token: int) -> None:
        for listener in list(self._listeners):
            try:
                listener(token)
            except Exception:
                logger.exception("stream %s: advance listener %r failed", self.name, listener)

    def next_finished(self) -> int:
        """Allocate and finish one id at once: for in-memory streams with no write to wait on."""
        self._refuse_if_following()
        self._last_allocated += 1
        self._unfinished[self._last_allocated] = None
        self._finish([self._last_allocated])
        return self._last_allocated

    def _refuse_if_following(self) -> None:
        if self.follows is not None:
            raise NotTheWriter(self.name, self.follows)

    def advance_to(self, token: int, *, may_reset: bool = False) -> None:
        """A follower learnt the writer's current token (replication). ``may_reset`` lets an
        in-memory stream go back to the writer's lower positions after the writer restarted."""
        if token > self._current_token or (may_reset and token != self._current_token):
            self._last_allocated = self._current_token = token
            self._notify(token)

    def get_current_token(self) -> int:
        """Every id at or below this has finished; never past a gap."""
        return self._current_token

    def add_advance_listener(self, fn: Callable[[int], None]) -> None:
        """fn(new_token) runs on the reactor thread each time the current token advances."""
        self._listeners.append(fn)


class NotTheWriter(RuntimeError):
    """A write to a stream this process only follows: its writer is another instance."""

    def __init__(self, stream: str, writer: str) -> None:
        super().__init__(f"stream {stream} is written by the instance {writer!r}, not by this process")
        self.stream = stream
        self.writer = writer


@attrs.frozen
class StreamAdvance:
    """The one signal every writer sends: stream X advanced to N, and these users and rooms care.

    ``everyone`` is set when a follower cannot know whom an advance concerns (it caught up
    after losing its replication connection): every waiter looks again."""

    stream: str
    position: int
    users: frozenset[str]
    rooms: frozenset[str]
    everyone: bool = False


AdvanceListener = Callable[[StreamAdvance], None]
#: Builds a stream several instances write (storage/sharded_stream.py), from the stream's
#: highest stored id, the writers' positions heard before it was built, the registry's emit,
#: and where to send this writer's own positions.
ShardFactory = Callable[[int, dict[str, int], AdvanceListener, AdvanceListener], Awaitable["StreamWriter"]]


class StreamWriter:
    """The one way to write to a stream: allocate ids, write, then announce once covered.

    ``async with writer.allocate(n) as ids:`` write the rows inside the block (the ids
    finish when it exits, committed or not); after it, ``writer.announce(ids[-1],
    users=..., rooms=...)``. The announcement is held until the stream's current token
    covers the position, so nobody is woken to read a stream that still has a gap below
    what they were told of. Every announcement goes to the registry's listeners (the
    notifier, caches that invalidate on writes, later Redis replication).
    """

    def __init__(self, name: str, generator: StreamIdGenerator, emit: AdvanceListener) -> None:
        self.name = name
        self._generator = generator
        self._emit = emit
        # Announcements that committed but sit behind an unfinished earlier id.
        self._held: list[tuple[int, frozenset[str], frozenset[str]]] = []
        generator.add_advance_listener(self._release)

    def get_current_token(self) -> int:
        return self._generator.get_current_token()

    def allocate(self, n: int = 1) -> AbstractAsyncContextManager[list[int]]:
        return self._generator.get_next_mult(n)

    def advance(self, *, users: Iterable[str] = (), rooms: Iterable[str] = ()) -> int:
        """One change of an in-memory stream (typing): a new position, announced at once."""
        position = self._generator.next_finished()
        self.announce(position, users=users, rooms=rooms)
        return position

    @property
    def follows(self) -> str | None:
        """The writer instance when this process only follows the stream (a worker)."""
        return self._generator.follows

    def follow_to(self, position: int, *, may_reset: bool = False) -> None:
        """Replication: the writer's current token is ``position`` (followers only)."""
        self._generator.advance_to(position, may_reset=may_reset)

    def follow_writer(self, instance: str, advance: StreamAdvance) -> None:
        """Replication: ``instance``, a writer of this stream, reached ``advance.position``
        (one writer: the same as ``follow_to``; storage/sharded_stream.py tells them apart)."""
        self.follow_to(advance.position)

    def own_position(self) -> int:
        """The position this process publishes for the stream (its token, with one writer)."""
        return self.get_current_token()

    def announce(self, position: int, *, users: Iterable[str] = (), rooms: Iterable[str] = ()) -> None:
        """A write at ``position`` committed: tell the listeners once the token covers it."""
        self._generator._refuse_if_following()
        self._held.append((position, frozenset(users), frozenset(rooms)))
        self._release(self._generator.get_current_token())

    def _release(self, token: int) -> None:
        ready = [entry for entry in self._held if entry[0] <= token]
        if not ready:
            return
        self._held = [entry for entry in self._held if entry[0] > token]
        users = frozenset().union(*(entry[1] for entry in ready))
        rooms = frozenset().union(*(entry[2] for entry in ready))
        self._emit(StreamAdvance(self.name, token, users, rooms))


class Streams:
    """Every stream writer of one process, and the listeners that hear every announcement.

    Writers over a table are created on first use (seeding reads MAX(column), so it is
    async); concurrent first callers share one creation. This registry is the single
    place where replication between processes hooks in (homeserver/replication): the
    publisher is one more listener, and in a worker the streams it ``follow``s have
    follower writers that refuse writes and advance only through ``replicated``, whose
    advances reach the same listeners as local ones.
    """

    def __init__(self, hs: StorageHost) -> None:
        self._db: Database = hs.db
        self._writers: dict[str, StreamWriter] = {}
        self._creating: dict[str, list[Deferred[StreamWriter]]] = {}
        self._listeners: list[AdvanceListener] = []
        # Worker mode: streams another instance writes, and the positions learnt for them
        # before their (follower) writer object was first asked for.
        self._followed: dict[str, str] = {}
        self._known: dict[str, int] = {}
        self._in_memory: set[str] = set()
        # Streams several instances write (``shard``): whether this process is one of them,
        # the factory of their writer, and positions heard per writer before it existed.
        self._sharded: dict[str, tuple[bool, ShardFactory]] = {}
        self._known_shards: dict[str, dict[str, int]] = {}
        self._own_listeners: list[AdvanceListener] = []

    def add_listener(self, listener: AdvanceListener) -> None:
        self._listeners.append(listener)

    def follow(self, name: str, writer_instance: str) -> None:
        """This process only reads stream ``name``; ``writer_instance`` writes it.

        Called at start-up, before anything asks for the stream's writer."""
        if name in self._writers or name in self._creating:
            raise RuntimeError(f"stream {name} already has a writer in this process")
        self._followed[name] = writer_instance

    def shard(self, name: str, writes_here: bool, factory: ShardFactory) -> None:
        """Stream ``name`` is written by several instances (``writes_here``: this one too).

        Called at start-up, before anything asks for the stream's writer."""
        if name in self._writers or name in self._creating:
            raise RuntimeError(f"stream {name} already has a writer in this process")
        self._sharded[name] = (writes_here, factory)

    def is_sharded(self, name: str) -> bool:
        return name in self._sharded

    def add_own_listener(self, listener: AdvanceListener) -> None:
        """``listener(advance)`` each time this process's own position of a sharded stream
        moves (what replication publishes for it; the token moves with every writer's)."""
        self._own_listeners.append(listener)

    def writes_here(self, name: str) -> bool:
        if name in self._sharded:
            return self._sharded[name][0]
        return name not in self._followed

    def local_positions(self) -> dict[str, int]:
        """The current token of every stream this process writes (what replication publishes)."""
        return {name: writer.own_position() for name, writer in self._writers.items()
                if writer.follows is None}

    def replicated_from(self, instance: str, advance: StreamAdvance) -> None:
        """An advance heard from ``instance``: of a sharded stream, that writer's position."""
        if advance.stream not in self._sharded:
            self.replicated(advance)
            return
        writer = self._writers.get(advance.stream)
        if writer is not None:
            writer.follow_writer(instance, advance)
            return
        known = self._known_shards.setdefault(advance.stream, {})
        known[instance] = max(known.get(instance, 0), advance.position)

    def replicated(self, advance: StreamAdvance) -> None:
        """An advance of a followed stream, heard from its writer: same listeners as a local one."""
        if advance.stream not in self._followed:
            return  # we write it ourselves: an echo of our own publication
        writer = self._writers.get(advance.stream)
        may_reset = advance.stream in self._in_memory
        if writer is not None:
            writer.follow_to(advance.position, may_reset=may_reset)
        elif may_reset or advance.position > self._known.get(advance.stream, 0):
            self._known[advance.stream] = advance.position
        self._emit(advance)

    def ready(self, name: str) -> StreamWriter | None:
        return self._writers.get(name)

    def current_position(self, name: str) -> int:
        """The stream's current token; 0 before its writer exists (nothing read yet)."""
        writer = self._writers.get(name)
        return self._known.get(name, 0) if writer is None else writer.get_current_token()

    def in_memory(self, name: str) -> StreamWriter:
        """A stream kept only in memory (typing): positions start at 0 at each start-up."""
        writer = self._writers.get(name)
        if writer is None:
            follows = self._followed.get(name)
            self._in_memory.add(name)
            start = self._known.get(name, 0) if follows else 0
            writer = StreamWriter(name, StreamIdGenerator(name, start, follows=follows), self._emit)
            self._writers[name] = writer
        return writer

    async def writer(self, name: str, table: str, column: str) -> StreamWriter:
        """The writer of stream ``name``, whose ids are table.column."""
        writer = self._writers.get(name)
        if writer is not None:
            return writer
        if name in self._creating:
            waiter: Deferred[StreamWriter] = Deferred()
            self._creating[name].append(waiter)
            return await waiter
        self._creating[name] = []
        try:
            writer = await self._create(name, table, column)
        except BaseException as exc:
            for waiter in self._creating.pop(name):
                waiter.errback(exc)
            raise
        self._writers[name] = writer
        for waiter in self._creating.pop(name):
            waiter.callback(writer)
        return writer

    async def _create(self, name: str, table: str, column: str) -> StreamWriter:
        generator = await StreamIdGenerator.create(self._db, table, column,
                                                   follows=self._followed.get(name))
        if name in self._sharded:
            return await self._sharded[name][1](
                generator.get_current_token(), self._known_shards.pop(name, {}), self._emit, self._emit_own)
        if name in self._known:
            # A follower trusts the writer's announced token over MAX(column), which may
            # stand past a write still in flight on the writer.
            generator.advance_to(self._known[name], may_reset=True)
        return StreamWriter(name, generator, self._emit)

    def _emit_own(self, advance: StreamAdvance) -> None:
        for listener in list(self._own_listeners):
            try:
                listener(advance)
            except Exception:
                logger.exception("stream %s: own-position listener %r failed", advance.stream, listener)

    def _emit(self, advance: StreamAdvance) -> None:
        for listener in list(self._listeners):
            try:
                listener(advance)
            except Exception:
                logger.exception("stream %s: listener %r failed", advance.stream, listener)
