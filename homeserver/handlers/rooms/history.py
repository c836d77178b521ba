"""Reading a room's history: one event, an event's context, and /messages pagination.

Pagination tokens (Synapse's shapes):
- `t<depth>-<stream>` (what /messages hands out) and `s<stream>` (what sync hands out)
  both name the position just AFTER the event at that stream position.
- Going backwards from P returns events at or below P, newest first; going forwards
  returns events above P, oldest first. Because a token is a position in the stream,
  it stays valid while new events arrive: forward pagination from the last `end`
  picks up exactly the events sent since, and joins up with sync's `s` tokens.
Rooms with only local events are linear (the room queue serialises them), so stream
order and topological order agree; the depth in `t` tokens is informational.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from homeserver.errors import MatrixError, invalid_param, not_found
from homeserver.handlers.rooms.event_format import EventFormatter
from homeserver.handlers.rooms.room_state import RoomStateHandler
from homeserver.handlers.rooms.visibility import filter_events_for_client
from homeserver.stream_token import StreamToken
from storage.stores.events import EventFilter, EventStore, StoredEvent
from storage.stores.state import StateGroupStore

MAX_LIMIT = 1000
#: The stream of a sync token whose position /messages pages from.
EVENTS_STREAM = "events"
#: Larger positions cannot be compared in SQL (BIGINT); no real stream gets near it.
MAX_STREAM = 2**62
_TOKEN = re.compile(r"^(?:t(?P<depth>-?\d+)-(?P<tstream>-?\d+)|s(?P<sstream>\d+))(?:_.*)?$")


def parse_token(token: str) -> int:
    """The stream position a pagination token names (400 M_INVALID_PARAM if malformed).

    A /sync ``next_batch`` is one too (spec: "a token from a previous call to /sync or
    /messages"): its room-events position, which means the same as an ``s`` token.
    """
    match = _TOKEN.match(token)
    if match is not None:
        stream = match.group("tstream") or match.group("sstream")
        return min(max(0, int(stream)), MAX_STREAM)
    try:
        events = StreamToken.parse(token).get(EVENTS_STREAM)
    except ValueError:
        events = None
    if events is None:
        raise invalid_param(f"Invalid pagination token {token!r}")
    return min(events, MAX_STREAM)


def topological_token(depth: int, stream: int) -> str:
    return f"t{max(depth, 0)}-{max(stream, 0)}"


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
    def __init__(self, hs: Any) -> None:
        self.hs = hs
        self.events = hs.get(EventStore)
        self.state = hs.get(RoomStateHandler)
        self.groups = hs.get(StateGroupStore)
        self.formatter = hs.get(EventFormatter)

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

    async def get_messages(self, requester: Any, room_id: str, from_token: str | None,
                           to_token: str | None, direction: str, limit: int,
                           room_filter: RoomEventFilter) -> dict[str, Any]:
        await self.state.check_can_read(room_id, requester.user_id)
        limit = min(max(room_filter.limit or limit, 0), MAX_LIMIT)
        current = await self.events.get_max_stream_position()
        backwards = direction == "b"
        if from_token is None:
            position = current if backwards else 0
            start = f"s{position}"
        else:
            position = min(parse_token(from_token), current)
            start = from_token
        bound = parse_token(to_token) if to_token is not None else None
        if backwards:
            low = bound if bound is not None else -1
            rows = await self.events.get_room_events_between(
                room_id, low, position, limit, True, room_filter.event_filter) if limit else []
        else:
            high = min(bound, current) if bound is not None else current
            rows = await self.events.get_room_events_between(
                room_id, position, high, limit, False, room_filter.event_filter) if limit else []
        visible = await filter_events_for_client(self.hs, requester.user_id, rows)
        result: dict[str, Any] = {
            "start": start,
            "chunk": await self.formatter.format_events(visible, requester),
        }
        if rows:
            last = rows[-1]
            if backwards:
                result["end"] = topological_token(last.depth - 1, last.stream_ordering - 1)
            else:
                result["end"] = topological_token(last.depth, last.stream_ordering)
        if room_filter.lazy_load_members and visible:
            result["state"] = await self._member_state_for(visible, requester)
        return result

    async def _member_state_for(self, events: list[StoredEvent], requester: Any) -> list[dict[str, Any]]:
        """Lazy-loaded members: the member events of the chunk's senders."""
        senders = {("m.room.member", s.event.sender) for s in events}
        newest = max(events, key=lambda s: s.stream_ordering)
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
        before = await self.events.get_room_events_between(
            room_id, -1, target.stream_ordering - 1, before_limit, True, event_filter) if before_limit else []
        after = await self.events.get_room_events_between(
            room_id, target.stream_ordering, current, after_limit, False, event_filter) if after_limit else []
        user_id = requester.user_id
        before_visible = await filter_events_for_client(self.hs, user_id, before)
        after_visible = await filter_events_for_client(self.hs, user_id, after)
        earliest = before[-1] if before else target
        latest = after[-1] if after else target
        state_ids = await self.groups.get_state_ids(latest.state_group)
        if room_filter.lazy_load_members:
            senders = {s.event.sender for s in [target, *before_visible, *after_visible]}
            state_ids = {k: v for k, v in state_ids.items()
                         if k[0] != "m.room.member" or k[1] in senders}
        state_events = await self.events.get_events(state_ids.values())
        return {
            "event": await self.formatter.format_event(target, requester),
            "events_before": await self.formatter.format_events(before_visible, requester),
            "events_after": await self.formatter.format_events(after_visible, requester),
            "start": topological_token(earliest.depth - 1, earliest.stream_ordering - 1),
            "end": topological_token(latest.depth, latest.stream_ordering),
            "state": await self.formatter.format_events(list(state_events.values()), requester),
        }
