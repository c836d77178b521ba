"""A stream written by several instances at once: the "events" stream with persisters.

With ``stream_writers.events`` naming more than one instance (docs/workers.md), each room
belongs to one persister, and every persister writes events. Ids still form one stream:
they come from one PostgreSQL sequence (``events_stream_seq``), so they are unique and
roughly follow time across writers. What differs from a single writer is the position:

- Each writer has its own position: every id *it* allocated at or below it has finished.
  Busy, that is the lowest id it has in flight, less one. Idle (nothing allocated nor being
  allocated), it may claim any id the sequence has already handed out, because whatever it
  allocates next comes after: it takes the highest position it has heard of. That is how an
  idle persister stops holding the stream back.
- The stream's token, what readers read up to, is the minimum over every writer's
  position: every id at or below it has finished on every writer. It only grows, and it is
  a plain ``events.N`` in the sync token, so tokens stay valid and comparable in every
  process (Synapse's multi-writer tokens also carry the writers ahead of the minimum; ours
  trade that latency for a token every reader already understands).
- Writers publish their own position (``on_own_advance``: the replication channel) with the
  users and rooms of the writes it covers; every process feeds what it hears from the others
  into ``replicated`` and emits the usual ``StreamAdvance`` once the minimum covers a write,
  so the notifier never wakes a reader for an event above the token.

The in-memory single writer (storage/streams.py ``StreamWriter``) stays for one process and
for every other stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from storage.engine import Database
from storage.streams import AdvanceListener, NotTheWriter, StreamAdvance, Streams, StreamWriter

#: PostgreSQL sequences (migration 0140) behind the events stream when it is sharded.
EVENTS_SEQUENCE = "events_stream_seq"
OUTLIERS_SEQUENCE = "events_outlier_seq"
STATE_GROUPS_SEQUENCE = "state_group_id_seq"

_Held = tuple[int, frozenset[str], frozenset[str], bool]


async def seed_sequence(db: Database, sequence: str, current_max: int) -> None:
    """Move ``sequence`` past ``current_max`` (ids a single writer allocated before the
    stream was sharded). Only ever forward: a running writer's ids stay unique."""
    await db.execute(
        f"seed_{sequence}",
        f"SELECT setval('{sequence}', ?) FROM {sequence}"
        " WHERE (CASE WHEN is_called THEN last_value ELSE last_value - 1 END) < ?",
        current_max,
        current_max,
    )


async def next_values(db: Database, sequence: str, n: int) -> list[int]:
    """``n`` new values of ``sequence``, ascending (not necessarily consecutive)."""
    rows = await db.execute(
        f"nextval_{sequence}", f"SELECT nextval('{sequence}') FROM generate_series(1, ?)", n
    )
    return sorted(int(row[0]) for row in rows)


class ShardedStreamWriter(StreamWriter):
    """One process's view of a stream several instances write (same API as ``StreamWriter``)."""

    def __init__(
        self,
        name: str,
        db: Database,
        instance: str,
        writers: list[str],
        start: int,
        known: dict[str, int],
        emit: AdvanceListener,
        on_own_advance: AdvanceListener,
    ) -> None:
        self.name = name
        self._db = db
        self.instance = instance
        self.writers = list(writers)
        self.local = instance in self.writers
        self._emit = emit
        self._on_own_advance = on_own_advance
        #: Every writer's position, as this process knows it (its own exactly).
        # The others start where they last said they were (the Redis hash, when it was read
        # first), else at the highest stored id.
        self.positions: dict[str, int] = {
            writer: start if writer == instance else known.get(writer, start) for writer in self.writers}
        self._token = min(self.positions.values())
        self._unfinished: dict[int, None] = {}
        self._allocating = 0
        self._last_allocated = start
        # Our own committed writes not yet covered by our position (to publish), and every
        # write heard of not yet covered by the token (to emit locally).
        self._own_held: list[_Held] = []
        self._held_writes: list[_Held] = []
        self._published = start
        # An idle writer claims what the others reached at once (and says so): waiting for
        # their next advance would hold every reader's token back until then.
        self._recompute_own()

    # -- the StreamWriter API ----------------------------------------------------------

    @property
    def follows(self) -> str | None:
        """Not None in a process that writes none of it (replication says who does)."""
        return None if self.local else ",".join(self.writers)

    def get_current_token(self) -> int:
        return self._token

    def allocate(self, n: int = 1) -> AbstractAsyncContextManager[list[int]]:
        if n < 1:
            raise ValueError("need at least one stream id")
        return self._allocate(n)

    @asynccontextmanager
    async def _allocate(self, n: int) -> AsyncIterator[list[int]]:
        self._refuse_if_following()
        self._allocating += 1  # from here our position may no longer jump ahead
        try:
            ids = await next_values(self._db, EVENTS_SEQUENCE, n)
        finally:
            self._allocating -= 1
        for stream_id in ids:
            self._unfinished[stream_id] = None
        self._last_allocated = max(self._last_allocated, ids[-1])
        try:
            yield ids
        finally:
            for stream_id in ids:
                del self._unfinished[stream_id]
            self._recompute_own()

    def announce(self, position: int, *, users: Iterable[str] = (), rooms: Iterable[str] = ()) -> None:
        """Our write at ``position`` committed: publish it once our position covers it, emit
        it here once the stream's token does."""
        self._refuse_if_following()
        entry = (position, frozenset(users), frozenset(rooms), False)
        self._own_held.append(entry)
        self._held_writes.append(entry)
        self._publish_own()
        self._release_held()

    def advance(self, *, users: Iterable[str] = (), rooms: Iterable[str] = ()) -> int:
        raise RuntimeError(f"stream {self.name} is stored: write rows with allocate()")

    def follow_to(self, position: int, *, may_reset: bool = False) -> None:
        """A position without a writer named: every other writer is at least there."""
        for writer in self.writers:
            if writer != self.instance:
                self.replicated(StreamAdvance(self.name, position, frozenset(), frozenset(), everyone=True), writer)

    def follow_writer(self, instance: str, advance: StreamAdvance) -> None:
        self.replicated(advance, instance)

    def _refuse_if_following(self) -> None:
        if not self.local:
            raise NotTheWriter(self.name, ",".join(self.writers))

    # -- positions -----------------------------------------------------------------------

    def own_position(self) -> int:
        """What this writer publishes: every id it allocated at or below has finished."""
        return self.positions.get(self.instance, self._token)

    def replicated(self, advance: StreamAdvance, writer: str) -> None:
        """Writer ``writer`` reached ``advance.position`` (heard over replication)."""
        if writer not in self.positions or writer == self.instance:
            return
        if advance.position > self.positions[writer]:
            self.positions[writer] = advance.position
        if advance.users or advance.rooms or advance.everyone:
            self._held_writes.append((advance.position, advance.users, advance.rooms, advance.everyone))
        self._recompute_own()
        self._release_held()

    def _recompute_own(self) -> None:
        if not self.local:
            return
        if self._unfinished:
            # min, not the first: concurrent allocations' answers may come back out of order.
            candidate = min(self._unfinished) - 1
        elif self._allocating:
            candidate = self.positions[self.instance]
        else:
            candidate = max([self._last_allocated, *self.positions.values()])
        if candidate > self.positions[self.instance]:
            self.positions[self.instance] = candidate
            self._publish_own()
            self._release_held()

    def _publish_own(self) -> None:
        position = self.positions[self.instance]
        ready = [entry for entry in self._own_held if entry[0] <= position]
        if not ready and position <= self._published:
            return
        self._published = position
        self._own_held = [entry for entry in self._own_held if entry[0] > position]
        users = frozenset().union(*(entry[1] for entry in ready))
        rooms = frozenset().union(*(entry[2] for entry in ready))
        self._on_own_advance(StreamAdvance(self.name, position, users, rooms))

    def _release_held(self) -> None:
        token = max(self._token, min(self.positions.values()))
        ready = [entry for entry in self._held_writes if entry[0] <= token]
        if token == self._token and not ready:
            return
        self._token = token
        self._held_writes = [entry for entry in self._held_writes if entry[0] > token]
        users = frozenset().union(*(entry[1] for entry in ready))
        rooms = frozenset().union(*(entry[2] for entry in ready))
        everyone = any(entry[3] for entry in ready)
        self._emit(StreamAdvance(self.name, token, users, rooms, everyone=everyone))


def shard_stream(streams: Streams, db: Database, name: str, instance: str, writers: list[str]) -> None:
    """Make ``name`` (the events stream) one that ``writers`` share, seen from ``instance``."""
    local = instance in writers

    async def build(start: int, known: dict[str, int], emit: AdvanceListener,
                    on_own: AdvanceListener) -> StreamWriter:
        if local:
            await seed_sequence(db, EVENTS_SEQUENCE, start)
        return ShardedStreamWriter(name, db, instance, writers, start, known, emit, on_own)

    streams.shard(name, local, build)


class SharedSequence:
    """Ids several persisters allocate (outlier orderings, state group ids) from one
    PostgreSQL sequence, so two of them never hand out the same one. Outliers take the
    values negated (``negate``): below every sync range, as with one writer."""

    def __init__(self, db: Database, sequence: str, *, negate: bool = False) -> None:
        self._db = db
        self.sequence = sequence
        self._sign = -1 if negate else 1
        self._seeded = False

    async def allocate(self, count: int, current: int) -> list[int]:
        """``count`` fresh ids past ``current``, the most extreme one stored (seeding only)."""
        if count == 0:
            return []
        if not self._seeded:
            await seed_sequence(self._db, self.sequence, self._sign * current)
            self._seeded = True
        return [self._sign * value for value in await next_values(self._db, self.sequence, count)]
