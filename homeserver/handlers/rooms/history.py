"""Reading a room's history: one event, an event's context, and /messages pagination.

/messages and /context walk a room in topological order: by depth, then by stream
position. An event that arrives late but belongs early (backfill, a fork healed after
a partition) has a late stream position but an early depth, and sorts where it belongs.

Pagination tokens (Synapse's shapes):
- `t<depth>-<stream>` (what /messages hands out) names a place in topological order:
  just after the event at (depth, stream).
- `s<stream>` (what sync hands out as prev_batch) names a place in the stream only;
  paging from it bounds the stream position alone, still ordered topologically.
- Going backwards from P returns events at or before P, newest first; going forwards
  returns events after P, oldest first. Nothing past the stream's current token is
  read, so a page never reaches past a write still in flight.

A backwards page that comes up short in a room with backward extremities (events cited
that we never got: a room joined over federation) asks a server in the room for the
history before them (``RemoteRoomJoiner.backfill``, federation/backfill.py) and reads
again. A room whose servers gave nothing is not asked again for ``BACKFILL_COOLDOWN_S``.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from homeserver.errors import MatrixError, invalid_param, not_found
from homeserver.handlers.rooms.event_format import EventFormatter
from homeserver.handlers.rooms.remote_rooms import RemoteRooms
from homeserver.handlers.rooms.room_state import RoomStateHandler
from homeserver.handlers.rooms.visibility import filter_events_for_client
from homeserver.server import Server
from homeserver.stream_token import StreamToken
from storage.stores.events import EventFilter, EventStore, StoredEvent, TopologicalKey
from storage.stores.room_dag import RoomDagStore
from storage.stores.state import StateGroupStore

MAX_LIMIT = 1000
#: Events looked at for /timestamp_to_event (the first visible one wins).
TIMESTAMP_WINDOW = 50
#: After a backfill that added nothing, the room is not asked again for this long.
BACKFILL_COOLDOWN_S = 30.0
#: The stream of a sync token whose position /messages pages from.
EVENTS_STREAM = "events"
#: Larger positions cannot be compared in SQL (BIGINT); no real stream gets near it.
MAX_STREAM = 2**62
MAX_DEPTH = 2**63 - 1
_TOKEN = re.compile(r"^(?:t(?P<depth>-?\d+)-(?P<tstream>-?\d+)|s(?P<sstream>\d+))(?:_.*)?$")


def parse_topological_token(token: str) -> TopologicalKey:
    """(depth, stream) of a `t` token, (None, stream) of an `s` token; 400 if malformed.

    A /sync ``next_batch`` is one too (spec: "a token from a previous call to /sync or
    /messages"): its room-events position, which means the same as an ``s`` token.
    """
    match = _TOKEN.match(token)
    if match is None:
        try:
            events = StreamToken.parse(token).get(EVENTS_STREAM)
        except ValueError:
            events = None
        if events is None:
            raise invalid_param(f"Invalid pagination token {token!r}")
        return None, min(events, MAX_STREAM)
    if match.group("sstream") is not None:
        return None, min(int(match.group("sstream")), MAX_STREAM)
    depth = min(max(int(match.group("depth")), -1), MAX_DEPTH)
    return depth, min(max(-MAX_STREAM, int(match.group("tstream"))), MAX_STREAM)


def parse_token(token: str) -> int:
    """The stream position a pagination token names (400 M_INVALID_PARAM if malformed)."""
    return max(0, parse_topological_token(token)[1])


def topological_token(depth: int, stream: int) -> str:
    return f"t{depth}-{stream}"


def _just_before(stored: StoredEvent) -> str:
    """The token backwards pagination continues from, below ``stored``."""
    return topological_token(stored.depth, stored.stream_ordering - 1)


def _just_after(stored: StoredEvent) -> str:
    return topological_token(stored.depth, stored.stream_ordering)


@attrs.frozen
class RoomEventFilter:
    """The parts of a RoomEventFilter that /messages and /context honour."""

    event_filter: EventFilter = attrs.field(factory=EventFilter)
    lazy_load_members: bool = False
    limit: int | None = None


def parse_room_event_filter(value: Any) -> RoomEventFilter:
    if value is None:
        return RoomEventFilter()
    if not isinstance(value, dict):
        raise MatrixError(400, "M_BAD_JSON", "filter must be a JSON object")

    def strings(name: str) -> list[str] | None:
        items = value.get(name)
        if items is None:
            return None
        if not isinstance(items, list) or not all(isinstance(i, str) and "\x00" not in i for i in items):
            raise MatrixError(400, "M_BAD_JSON", f"filter.{name} must be a list of strings")
        return items

    contains_url = value.get("contains_url")
    if contains_url is not None and not isinstance(contains_url, bool):
        raise MatrixError(400, "M_BAD_JSON", "filter.contains_url must be a boolean")
    lazy = value.get("lazy_load_members", False)
    limit = value.get("limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise MatrixError(400, "M_BAD_JSON", "filter.limit must be a positive integer")
    return RoomEventFilter(
        EventFilter(types=strings("types"), not_types=strings("not_types") or (),
                    senders=strings("senders"), not_senders=strings("not_senders") or (),
                    contains_url=contains_url),
        lazy_load_members=bool(lazy), limit=limit,
    )


class HistoryHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.events = hs.get(EventStore)
        self.state = hs.get(RoomStateHandler)
        self.groups = hs.get(StateGroupStore)
        self.formatter = hs.get(EventFormatter)
        self.dag = hs.get(RoomDagStore)
        self.clock = hs.clock
        self._fruitless: dict[str, float] = {}

    async def _backfill(self, room_id: str, wanted: int) -> bool:
        """Fetch history from before our oldest event of the room; whether any arrived."""
        joiner = self.hs.get(RemoteRooms).joiner
        now = self.clock.seconds()
        if joiner is None or now - self._fruitless.get(room_id, -BACKFILL_COOLDOWN_S) < BACKFILL_COOLDOWN_S:
            return False
        if not await self.dag.get_backward_extremities(room_id):
            return False
        if await joiner.backfill(room_id, wanted):
            self._fruitless.pop(room_id, None)
            return True
        if len(self._fruitless) > 10_000:
            self._fruitless.clear()
        self._fruitless[room_id] = now
        return False

    async def get_visible_event(self, requester: Any, room_id: str, event_id: str) -> StoredEvent:
        """The event if it is in this room and the user may see it; 404 otherwise."""
        stored = await self.events.get_event(event_id)
        if stored is None or stored.event.room_id != room_id:
            raise not_found("Event not found")
        visible = await filter_events_for_client(self.hs, requester.user_id, [stored])
        if not visible:
            raise not_found("Event not found")
        return stored

    async def get_event(self, requester: Any, room_id: str, event_id: str) -> dict[str, Any]:
        """404 whether or not the event exists when the user may not see it, so the
        answer does not tell an outsider which event IDs a room holds (spec, Synapse)."""
        try:
            await self.state.check_can_read(room_id, requester.user_id)
        except MatrixError as error:
            if error.status != 403:
                raise
            raise not_found("Event not found") from None
        stored = await self.get_visible_event(requester, room_id, event_id)
        return await self.formatter.format_event(stored, requester)

    async def timestamp_to_event(self, requester: Any, room_id: str, ts: int, direction: str) -> dict[str, Any]:
        """The visible event closest to ``ts`` in ``direction`` ("f": at or after, "b": at or
        before), 404 when there is none here."""
        await self.state.check_can_read(room_id, requester.user_id)
        found = await self.events.get_room_events_by_timestamp(room_id, ts, direction == "f", TIMESTAMP_WINDOW)
        visible = await filter_events_for_client(self.hs, requester.user_id, found)
        if not visible:
            raise not_found(f"No event found {'after' if direction == 'f' else 'before'} {ts} in {room_id}")
        return {"event_id": visible[0].event_id, "origin_server_ts": visible[0].event.origin_server_ts}

    async def get_messages(self, requester: Any, room_id: str, from_token: str | None,
                           to_token: str | None, direction: str, limit: int,
                           room_filter: RoomEventFilter) -> dict[str, Any]:
        await self.state.check_can_read(room_id, requester.user_id)
        limit = min(max(room_filter.limit or limit, 0), MAX_LIMIT)
        current = await self.events.get_max_stream_position()
        backwards = direction == "b"
        from_key: TopologicalKey
        if from_token is None:
            from_key = (None, current) if backwards else (-1, -MAX_STREAM)
            start = f"s{current}" if backwards else "t-1-0"
        else:
            from_key = parse_topological_token(from_token)
            start = from_token
        to_key = parse_topological_token(to_token) if to_token is not None else None
        rows = await self.events.get_room_events_topological(
            room_id, from_key, to_key, backwards, limit, current, room_filter.event_filter) if limit else []
        if backwards and limit and len(rows) < limit and to_key is None \
                and await self._backfill(room_id, limit - len(rows)):
            rows = await self.events.get_room_events_topological(
                room_id, from_key, to_key, backwards, limit, current, room_filter.event_filter)
        visible = await filter_events_for_client(self.hs, requester.user_id, rows)
        result: dict[str, Any] = {
            "start": start,
            "chunk": await self.formatter.format_events(visible, requester),
        }
        if rows:
            result["end"] = _just_before(rows[-1]) if backwards else _just_after(rows[-1])
        if room_filter.lazy_load_members and visible:
            result["state"] = await self._member_state_for(visible, requester)
        return result

    async def _member_state_for(self, events: list[StoredEvent], requester: Any) -> list[dict[str, Any]]:
        """Lazy-loaded members: the member events of the chunk's senders."""
        senders = {("m.room.member", s.event.sender) for s in events}
        newest = max(events, key=lambda s: s.stream_ordering)
        if newest.state_group is None:
            return []
        ids = await self.groups.get_state_ids_filtered(newest.state_group, keys=senders)
        loaded = await self.events.get_events(ids.values())
        return await self.formatter.format_events(list(loaded.values()), requester)

    async def get_context(self, requester: Any, room_id: str, event_id: str, limit: int,
                          room_filter: RoomEventFilter) -> dict[str, Any]:
        await self.state.check_can_read(room_id, requester.user_id)
        target = await self.get_visible_event(requester, room_id, event_id)
        limit = min(max(limit, 0), MAX_LIMIT)
        before_limit = limit // 2
        after_limit = limit - before_limit
        current = await self.events.get_max_stream_position()
        event_filter = room_filter.event_filter
        at: TopologicalKey = (target.depth, target.stream_ordering)
        below: TopologicalKey = (target.depth, target.stream_ordering - 1)
        before = await self.events.get_room_events_topological(
            room_id, below, None, True, before_limit, current, event_filter) if before_limit else []
        after = await self.events.get_room_events_topological(
            room_id, at, None, False, after_limit, current, event_filter) if after_limit else []
        user_id = requester.user_id
        before_visible = await filter_events_for_client(self.hs, user_id, before)
        after_visible = await filter_events_for_client(self.hs, user_id, after)
        earliest = before[-1] if before else target
        latest = after[-1] if after else target
        state_ids = await self.state.get_state_ids_after_event(latest)
        if room_filter.lazy_load_members:
            senders = {s.event.sender for s in [target, *before_visible, *after_visible]}
            state_ids = {k: v for k, v in state_ids.items()
                         if k[0] != "m.room.member" or k[1] in senders}
        state_events = await self.events.get_events(state_ids.values())
        return {
            "event": await self.formatter.format_event(target, requester),
            "events_before": await self.formatter.format_events(before_visible, requester),
            "events_after": await self.formatter.format_events(after_visible, requester),
            "start": _just_before(earliest),
            "end": _just_after(latest),
            "state": await self.formatter.format_events(list(state_events.values()), requester),
        }
