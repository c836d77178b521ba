"""Bump stamps (each room's newest timeline event) without a query over every room each request.

Ordering a user's rooms by recency needs the stamp of every room they are in, not only of the
rooms shown: for a user in 500 rooms that one query was the largest part of an initial sliding
sync request. A stamp read from the database is remembered with the position it was read at, and
used again while the one in-memory window of the events stream (storage/room_stream_cache.py)
says the room has had no timeline event since. The window answers "changed" whenever it does not
know (below its floor, on a worker that is not fed), so an unknown room is read again, never
guessed.
"""

from __future__ import annotations

from collections.abc import Iterable

from homeserver.server import Server
from storage.room_stream_cache import RoomStreamCache
from storage.stores.sliding_sync import SlidingSyncStore

#: Rooms whose stamps are remembered; past it the oldest entries go (they are read again on use).
MAX_REMEMBERED = 100_000


class BumpStamps:
    def __init__(self, hs: Server) -> None:
        self.store = hs.get(SlidingSyncStore)
        self.recent = hs.get(RoomStreamCache)
        #: room -> (stamp, the events position the stamp was read at).
        self._known: dict[str, tuple[int, int]] = {}

    async def get(self, room_ids: Iterable[str], upto: int) -> dict[str, int]:
        """room -> its newest timeline event's stream position at or below ``upto`` (rooms without
        one are left out), as ``SlidingSyncStore.bump_stamps`` answers it."""
        found: dict[str, int] = {}
        missing: list[str] = []
        for room in room_ids:
            known = self._known.get(room)
            if known is not None and known[1] <= upto and not self.recent.room_changed_since(room, known[1]):
                if known[0]:
                    found[room] = known[0]
            else:
                missing.append(room)
        if missing:
            read = await self.store.bump_stamps(missing, upto)
            found.update(read)
            if len(self._known) + len(missing) > MAX_REMEMBERED:
                for stale in list(self._known)[: len(missing)]:
                    del self._known[stale]
            for room in missing:
                self._known[room] = (read.get(room, 0), upto)
        return found
