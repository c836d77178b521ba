"""The MLS delivery service's tables (migration 0100): groups, the commit log, leaves, Welcomes.

The one race that matters is two commits for the same epoch: ``accept_commit``
advances ``mls_groups.epoch`` with ``UPDATE ... WHERE epoch = ?`` (or creates the
group with ``INSERT ... ON CONFLICT DO NOTHING`` at epoch 0), and only a
transaction whose statement changed a row writes its commit. On PostgreSQL a
concurrent loser is aborted (40001) and re-run, and then sees the new epoch; on
SQLite transactions are serialised. The (room_id, epoch) primary key of
``mls_commits`` backs this up: two rows for one epoch cannot exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

from storage.engine import Transaction
from storage.host import StorageHost
from storage.streams import Streams, StreamWriter

INSERT_REF = (
    "INSERT INTO mls_key_package_refs (ref, user_id, device_id, claimed_ms) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (ref) DO NOTHING"
)
SELECT_REF = "SELECT user_id, device_id FROM mls_key_package_refs WHERE ref = ?"
SELECT_GROUP = "SELECT epoch FROM mls_groups WHERE room_id = ?"
SELECT_GROUP_ROOMS = "SELECT room_id FROM mls_groups"
CREATE_GROUP = (
    "INSERT INTO mls_groups (room_id, epoch, created_ms, group_info) VALUES (?, 1, ?, ?)"
    " ON CONFLICT (room_id) DO NOTHING"
)
ADVANCE_GROUP = "UPDATE mls_groups SET epoch = epoch + 1 WHERE room_id = ? AND epoch = ?"
SET_GROUP_INFO = "UPDATE mls_groups SET group_info = ? WHERE room_id = ?"
SELECT_GROUP_INFO = "SELECT group_info FROM mls_groups WHERE room_id = ?"
INSERT_COMMIT = (
    "INSERT INTO mls_commits (room_id, epoch, stream_id, sender, sender_device, commit_b64, welcome_b64,"
    " received_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_STREAM = "INSERT INTO mls_stream (stream_id, room_id) VALUES (?, ?)"
INSERT_RECIPIENT = (
    "INSERT INTO mls_welcome_recipients (room_id, epoch, user_id, device_id) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (room_id, epoch, user_id, device_id) DO NOTHING"
)
SELECT_LEAVES = (
    "SELECT leaf_index, user_id, device_id FROM mls_leaves WHERE room_id = ? AND removed_epoch IS NULL"
    " ORDER BY leaf_index"
)
COUNT_LEAVES = "SELECT COUNT(*) FROM mls_leaves WHERE room_id = ? AND removed_epoch IS NULL"
REMOVE_LEAF = (
    "UPDATE mls_leaves SET removed_epoch = ? WHERE room_id = ? AND leaf_index = ? AND removed_epoch IS NULL"
)
INSERT_LEAF = (
    "INSERT INTO mls_leaves (room_id, leaf_index, added_epoch, user_id, device_id) VALUES (?, ?, ?, ?, ?)"
)
SELECT_ROOM_WINDOWS = "SELECT user_id, device_id, added_epoch, removed_epoch FROM mls_leaves WHERE room_id = ?"
DELETE_PENDING = "DELETE FROM mls_pending_removals WHERE room_id = ? AND leaf_index = ?"
INSERT_PENDING = (
    "INSERT INTO mls_pending_removals (room_id, leaf_index, since_ms) VALUES (?, ?, ?)"
    " ON CONFLICT (room_id, leaf_index) DO NOTHING"
)
SELECT_PENDING = (
    "SELECT p.leaf_index, l.user_id, l.device_id, p.since_ms FROM mls_pending_removals p"
    " JOIN mls_leaves l ON l.room_id = p.room_id AND l.leaf_index = p.leaf_index AND l.removed_epoch IS NULL"
    " WHERE p.room_id = ? ORDER BY p.leaf_index"
)
SELECT_USER_LEAVES = (
    "SELECT leaf_index FROM mls_leaves WHERE room_id = ? AND user_id = ? AND removed_epoch IS NULL"
)
SELECT_DEVICE_ROOMS = (
    "SELECT room_id, leaf_index FROM mls_leaves WHERE user_id = ? AND device_id = ? AND removed_epoch IS NULL"
)
SELECT_CHANGED_ROOMS = "SELECT DISTINCT room_id FROM mls_stream WHERE stream_id > ? AND stream_id <= ?"
SELECT_COMMITS_IN_RANGE = (
    "SELECT epoch, sender, sender_device FROM mls_commits"
    " WHERE room_id = ? AND stream_id > ? AND stream_id <= ? ORDER BY epoch LIMIT ?"
)
SELECT_COMMITS_FROM = (
    "SELECT epoch, sender, sender_device FROM mls_commits"
    " WHERE room_id = ? AND epoch >= ? AND stream_id <= ? ORDER BY epoch LIMIT ?"
)
SELECT_COMMIT_BODY = "SELECT commit_b64 FROM mls_commits WHERE room_id = ? AND epoch = ?"
SELECT_WELCOME = (
    "SELECT c.welcome_b64 FROM mls_commits c JOIN mls_welcome_recipients r"
    " ON r.room_id = c.room_id AND r.epoch = c.epoch"
    " WHERE c.room_id = ? AND c.epoch = ? AND r.user_id = ? AND r.device_id = ?"
)
SELECT_ADDED_USERS = "SELECT user_id FROM mls_leaves WHERE room_id = ? AND added_epoch = ?"
SELECT_WELCOME_BODY = "SELECT welcome_b64 FROM mls_commits WHERE room_id = ? AND epoch = ?"
PURGE_COMMITS = "DELETE FROM mls_commits WHERE received_ms < ?"
PURGE_RECIPIENTS = (
    "DELETE FROM mls_welcome_recipients WHERE NOT EXISTS (SELECT 1 FROM mls_commits c"
    " WHERE c.room_id = mls_welcome_recipients.room_id AND c.epoch = mls_welcome_recipients.epoch)"
)
PURGE_REFS = "DELETE FROM mls_key_package_refs WHERE claimed_ms < ?"
# Stream rows older than the oldest commit still kept (always keeping the newest, the stream's high water).
PURGE_STREAM = (
    "DELETE FROM mls_stream WHERE stream_id < COALESCE((SELECT MIN(stream_id) FROM mls_commits),"
    " (SELECT MAX(stream_id) FROM mls_stream))"
)


@attrs.frozen
class Leaf:
    index: int
    user_id: str
    device_id: str


@attrs.frozen
class StoredCommit:
    epoch: int
    sender: str
    sender_device: str


@attrs.frozen
class PendingRemoval:
    leaf: Leaf
    since_ms: int


@attrs.frozen
class NewCommit:
    """An accepted commit as the store writes it; ``added`` gets leaves in order, leftmost free first."""

    room_id: str
    epoch: int
    sender: str
    sender_device: str
    commit_b64: str
    welcome_b64: str | None
    group_info_b64: str | None
    removed: tuple[int, ...]
    added: tuple[tuple[str, str], ...]
    welcome_recipients: tuple[tuple[str, str], ...]
    creator_device: str | None  # epoch 0: the creator's device takes leaf 0


def _place(occupied: set[int], removed: Iterable[int], count: int) -> list[int]:
    """RFC 9420 §12.1.1: each Add takes the leftmost blank leaf, after the removals blanked theirs."""
    taken = set(occupied) - set(removed)
    placed: list[int] = []
    index = 0
    while len(placed) < count:
        if index not in taken:
            placed.append(index)
            taken.add(index)
        index += 1
    return placed


class MlsStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db
        self.streams: Streams = hs.get(Streams)

    async def stream_writer(self) -> StreamWriter:
        return await self.streams.writer("mls", "mls_stream", "stream_id")

    async def position(self) -> int:
        """The stream's current position, seeding the writer first (right after a start it is 0 until then)."""
        return (await self.stream_writer()).get_current_token()

    # -- KeyPackageRefs ----------------------------------------------------------------------

    @staticmethod
    def record_refs_txn(txn: Transaction, rows: Sequence[tuple[str, str, str]], now_ms: int) -> None:
        txn.executemany(INSERT_REF, [(ref, user_id, device_id, now_ms) for ref, user_id, device_id in rows])

    async def devices_for_refs(self, refs: Sequence[str]) -> dict[str, tuple[str, str]]:
        def find(txn: Transaction) -> dict[str, tuple[str, str]]:
            found: dict[str, tuple[str, str]] = {}
            for ref in refs:
                txn.execute(SELECT_REF, (ref,))
                row = txn.fetchone()
                if row is not None:
                    found[ref] = (row[0], row[1])
            return found

        return await self.db.run_interaction("mls_devices_for_refs", find)

    # -- groups and commits ------------------------------------------------------------------

    async def current_epoch(self, room_id: str) -> int:
        """The epoch the group's next commit must carry; 0 before the first."""
        rows = await self.db.execute("mls_current_epoch", SELECT_GROUP, room_id)
        return int(rows[0][0]) if rows else 0

    async def group_rooms(self) -> list[str]:
        rows = await self.db.execute("mls_group_rooms", SELECT_GROUP_ROOMS)
        return [row[0] for row in rows]

    async def accept_commit(self, commit: NewCommit, stream_id: int, now_ms: int) -> bool:
        """Write the commit if it is the first for its epoch; False (only the stream position written) if
        another won."""

        def accept(txn: Transaction) -> bool:
            if commit.epoch == 0:
                txn.execute(CREATE_GROUP, (commit.room_id, now_ms, commit.group_info_b64))
            else:
                txn.execute(ADVANCE_GROUP, (commit.room_id, commit.epoch))
            if txn.rowcount != 1:
                # The position was handed out (a sync token may already cover it): keep it, or a
                # restart would seed the stream below it and hand it out again, unseen.
                txn.execute(INSERT_STREAM, (stream_id, commit.room_id))
                return False
            if commit.epoch != 0 and commit.group_info_b64 is not None:
                txn.execute(SET_GROUP_INFO, (commit.group_info_b64, commit.room_id))
            txn.execute(INSERT_COMMIT, (commit.room_id, commit.epoch, stream_id, commit.sender,
                                        commit.sender_device, commit.commit_b64, commit.welcome_b64, now_ms))
            txn.execute(INSERT_STREAM, (stream_id, commit.room_id))
            self._apply_leaves_txn(txn, commit)
            txn.executemany(INSERT_RECIPIENT, [(commit.room_id, commit.epoch, user_id, device_id)
                                               for user_id, device_id in commit.welcome_recipients])
            return True

        return await self.db.run_interaction("mls_accept_commit", accept)

    @staticmethod
    def _apply_leaves_txn(txn: Transaction, commit: NewCommit) -> None:
        txn.execute(SELECT_LEAVES, (commit.room_id,))
        occupied = {int(row[0]) for row in txn.fetchall()}
        if commit.creator_device is not None and 0 not in occupied:
            txn.execute(INSERT_LEAF, (commit.room_id, 0, -1, commit.sender, commit.creator_device))
            occupied.add(0)
        for index in commit.removed:
            txn.execute(REMOVE_LEAF, (commit.epoch, commit.room_id, index))
            txn.execute(DELETE_PENDING, (commit.room_id, index))
        places = _place(occupied, commit.removed, len(commit.added))
        txn.executemany(INSERT_LEAF, [(commit.room_id, index, commit.epoch, user_id, device_id)
                                      for index, (user_id, device_id) in zip(places, commit.added, strict=True)])

    async def leaves(self, room_id: str) -> list[Leaf]:
        rows = await self.db.execute("mls_leaves", SELECT_LEAVES, room_id)
        return [Leaf(int(row[0]), row[1], row[2]) for row in rows]

    async def room_windows(self, room_id: str) -> dict[tuple[str, str], list[tuple[int, int | None]]]:
        """Per device, the (added_epoch, removed_epoch) spans it sat in the group: it needs the commits
        inside. The whole room in one read, as a commit wakes every member at once."""
        rows = await self.db.execute("mls_room_windows", SELECT_ROOM_WINDOWS, room_id)
        windows: dict[tuple[str, str], list[tuple[int, int | None]]] = {}
        for user_id, device_id, added, removed in rows:
            windows.setdefault((user_id, device_id), []).append(
                (int(added), None if removed is None else int(removed)))
        return windows

    async def leaf_count(self, room_id: str) -> int:
        rows = await self.db.execute("mls_leaf_count", COUNT_LEAVES, room_id)
        return int(rows[0][0])

    async def set_group_info(self, room_id: str, group_info_b64: str) -> None:
        await self.db.execute("mls_set_group_info", SET_GROUP_INFO, group_info_b64, room_id)

    async def group_info(self, room_id: str) -> str | None:
        rows = await self.db.execute("mls_group_info", SELECT_GROUP_INFO, room_id)
        return rows[0][0] if rows else None

    # -- reading the log ---------------------------------------------------------------------

    async def changed_rooms(self, after: int, upto: int) -> set[str]:
        rows = await self.db.execute("mls_changed_rooms", SELECT_CHANGED_ROOMS, after, upto)
        return {row[0] for row in rows}

    async def commits_in_range(self, room_id: str, after: int, upto: int, limit: int) -> list[StoredCommit]:
        rows = await self.db.execute("mls_commits_in_range", SELECT_COMMITS_IN_RANGE, room_id, after, upto, limit)
        return [StoredCommit(int(r[0]), r[1], r[2]) for r in rows]

    async def commits_from(self, room_id: str, from_epoch: int, upto: int, limit: int) -> list[StoredCommit]:
        rows = await self.db.execute("mls_commits_from", SELECT_COMMITS_FROM, room_id, from_epoch, upto, limit)
        return [StoredCommit(int(r[0]), r[1], r[2]) for r in rows]

    async def commit_body(self, room_id: str, epoch: int) -> str:
        rows = await self.db.execute("mls_commit_body", SELECT_COMMIT_BODY, room_id, epoch)
        if not rows:
            raise KeyError((room_id, epoch))
        return str(rows[0][0])

    async def welcome_for(self, room_id: str, epoch: int, user_id: str, device_id: str) -> str | None:
        rows = await self.db.execute("mls_welcome_for", SELECT_WELCOME, room_id, epoch, user_id, device_id)
        return rows[0][0] if rows else None

    async def welcome_with_added(self, room_id: str, epoch: int) -> tuple[str | None, set[str]]:
        """A commit's Welcome (if any) and the users whose devices it added (for other servers' copies)."""
        rows = await self.db.execute("mls_welcome_body", SELECT_WELCOME_BODY, room_id, epoch)
        if not rows or rows[0][0] is None:
            return None, set()
        users = await self.db.execute("mls_added_users", SELECT_ADDED_USERS, room_id, epoch)
        return str(rows[0][0]), {row[0] for row in users}

    # -- membership hygiene ------------------------------------------------------------------

    async def user_leaves(self, room_id: str, user_id: str) -> list[int]:
        rows = await self.db.execute("mls_user_leaves", SELECT_USER_LEAVES, room_id, user_id)
        return [int(row[0]) for row in rows]

    async def device_leaves(self, user_id: str, device_id: str) -> list[tuple[str, int]]:
        rows = await self.db.execute("mls_device_leaves", SELECT_DEVICE_ROOMS, user_id, device_id)
        return [(row[0], int(row[1])) for row in rows]

    async def add_pending_removals(self, room_id: str, leaf_indexes: Sequence[int], stream_id: int,
                                   now_ms: int) -> None:
        def add(txn: Transaction) -> None:
            txn.executemany(INSERT_PENDING, [(room_id, index, now_ms) for index in leaf_indexes])
            txn.execute(INSERT_STREAM, (stream_id, room_id))

        await self.db.run_interaction("mls_add_pending_removals", add)

    async def pending_removals(self, room_id: str) -> list[PendingRemoval]:
        rows = await self.db.execute("mls_pending_removals", SELECT_PENDING, room_id)
        return [PendingRemoval(Leaf(int(r[0]), r[1], r[2]), int(r[3])) for r in rows]

    # -- retention ---------------------------------------------------------------------------

    async def purge_older_than(self, before_ms: int) -> int:
        def purge(txn: Transaction) -> int:
            txn.execute(PURGE_COMMITS, (before_ms,))
            removed = txn.rowcount
            txn.execute(PURGE_RECIPIENTS)
            txn.execute(PURGE_REFS, (before_ms,))
            txn.execute(PURGE_STREAM)
            return removed

        return await self.db.run_interaction("mls_purge", purge)
