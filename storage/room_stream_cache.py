"""An in-memory window of the "events" stream: which rooms changed, which users' memberships
changed, and each room's recent timeline events, so a woken sync needs no database round trip
in the common case (in the manner of Synapse's ``StreamChangeCache``).

Invariants, which everything reading it relies on:

- It is fed by the one event writer (homeserver/pipeline/persist.py) after each commit and
  *before* the batch's stream ids are finished, so no reader can see a stream token covering
  an event this cache has not heard of.
- It knows every event with a position above its floor (``covers``). Below the floor, or
  for a room whose window was trimmed below the position asked about, it answers "unknown"
  (None, or "changed" for the change questions) and the caller asks the database.
- "Changed since X" may say yes when nothing visible changed (a superset), never no when
  something did.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Iterable

from storage.host import StorageHost

#: Timeline events kept per room (enough for a sync's timeline limit).
EVENTS_PER_ROOM = 128
#: Rooms whose windows are kept; evicting one raises the floor past its newest event.
MAX_ROOMS = 20_000
#: Users whose last membership change is kept; forgetting them raises the floor likewise.
MAX_USERS = 200_000


class RoomStreamCache:
    def __init__(self, hs: StorageHost) -> None:
        self._floor: int | None = None
        #: room -> [(stream_ordering, event_id)] of timeline events, ascending.
        self._events: OrderedDict[str, list[tuple[int, str]]] = OrderedDict()
        #: room -> positions at or below which its window no longer reaches.
        self._trimmed: dict[str, int] = {}
        self._room_changed: dict[str, int] = {}
        self._room_members_changed: dict[str, int] = {}
        self._user_membership_changed: dict[str, int] = {}
        #: room -> [(stream_ordering, state_group)]: where its current state changed (room_stream_state).
        self._state_points: dict[str, list[tuple[int, int]]] = {}
        #: room -> the state group in force at the floor, as the database answered.
        self._state_at_floor: dict[str, int | None] = {}
        #: Off where this process writes only some rooms (event persisters): it would know
        #: only its own rooms' events, so it must answer "unknown" for every room.
        self.enabled = True

    def start(self, position: int) -> None:
        """Called by the writer before it allocates anything: every later id will be recorded."""
        if self._floor is None and self.enabled:
            self._floor = position

    @property
    def floor(self) -> int | None:
        """The position from which every event is recorded (None: not started, or disabled)."""
        return self._floor

    def covers(self, since: int) -> bool:
        return self._floor is not None and since >= self._floor

    def record(
        self,
        room_id: str,
        events: Iterable[tuple[int, str]],
        memberships: Iterable[tuple[str, int]],
        state_points: Iterable[tuple[int, int]] = (),
    ) -> None:
        """A committed batch: its timeline events, its (user, position) membership changes and
        its (position, state group) current-state changes."""
        if not self.enabled:
            return
        points = self._state_points.setdefault(room_id, [])
        for point in state_points:
            bisect.insort(points, point)
        if len(points) > EVENTS_PER_ROOM:
            # Keep the newest; the last one cut still answers for positions before the rest.
            del points[: len(points) - EVENTS_PER_ROOM]
            self._state_at_floor.pop(room_id, None)
        window = self._events.get(room_id)
        if window is None:
            window = self._events[room_id] = []
        else:
            self._events.move_to_end(room_id)
        newest = self._room_changed.get(room_id, 0)
        for position, event_id in events:
            bisect.insort(window, (position, event_id))
            newest = max(newest, position)
        self._room_changed[room_id] = newest
        if len(window) > EVENTS_PER_ROOM:
            cut = len(window) - EVENTS_PER_ROOM
            self._trimmed[room_id] = window[cut - 1][0]
            del window[:cut]
        for user_id, position in memberships:
            self._user_membership_changed[user_id] = max(
                position, self._user_membership_changed.get(user_id, 0)
            )
            self._room_members_changed[room_id] = max(
                position, self._room_members_changed.get(room_id, 0)
            )
        self._bound()

    def _bound(self) -> None:
        while len(self._events) > MAX_ROOMS:
            room_id, _window = self._events.popitem(last=False)
            self._raise_floor(self._room_changed.pop(room_id, 0))
            self._raise_floor(self._room_members_changed.pop(room_id, 0))
            self._trimmed.pop(room_id, None)
            self._state_points.pop(room_id, None)
            self._state_at_floor.pop(room_id, None)
        if len(self._user_membership_changed) > MAX_USERS:
            self._raise_floor(max(self._user_membership_changed.values()))
            self._user_membership_changed.clear()

    def _raise_floor(self, position: int) -> None:
        if self._floor is not None and position > self._floor:
            self._floor = position

    def room_changed_since(self, room_id: str, since: int) -> bool:
        """Might the room have a timeline event after ``since``? (True when unknown.)"""
        return not self.covers(since) or self._room_changed.get(room_id, 0) > since

    def members_changed_since(self, room_id: str, since: int) -> bool:
        """Might someone's membership in the room have changed after ``since``?"""
        return not self.covers(since) or self._room_members_changed.get(room_id, 0) > since

    def membership_changed_since(self, user_id: str, since: int) -> bool:
        """Might the user's membership in some room have changed after ``since``?"""
        return not self.covers(since) or self._user_membership_changed.get(user_id, 0) > since

    def room_events_between(self, room_id: str, since: int, upto: int) -> list[str] | None:
        """Event IDs of the room's timeline events in (since, upto], oldest first; None if unknown."""
        if not self.covers(since) or self._trimmed.get(room_id, 0) > since:
            return None
        window = self._events.get(room_id)
        if window is None:
            return [] if room_id not in self._trimmed else None
        start = bisect.bisect_right(window, (since, "\U0010ffff"))
        return [event_id for position, event_id in window[start:] if position <= upto]

    def state_group_at(self, room_id: str, position: int) -> tuple[bool, int | None]:
        """(known, the room's current-state group as of ``position``); known False: ask the database."""
        if not self.covers(position):
            return False, None
        points = self._state_points.get(room_id)
        if points:
            index = bisect.bisect_right(points, (position, 2**62))
            if index > 0:
                return True, points[index - 1][1]
            if len(points) >= EVENTS_PER_ROOM:
                return False, None  # trimmed: what came before the kept points is gone
        if room_id in self._state_at_floor:
            return True, self._state_at_floor[room_id]
        return False, None

    def remember_state_at_floor(self, room_id: str, position: int, group: int | None) -> None:
        """The database's answer for a position with no recorded change at or before it: the
        same for every such position, since every change after the floor is recorded."""
        if not self.covers(position):
            return
        points = self._state_points.get(room_id)
        if points and (points[0][0] <= position or len(points) >= EVENTS_PER_ROOM):
            return
        if len(self._state_at_floor) >= MAX_ROOMS:
            self._state_at_floor.clear()
        self._state_at_floor[room_id] = group
