"""rooms.join / invite / leave / knock (stream "events").

For each room the user's membership as of ``upto`` decides the section.  A
room joined before ``since`` gets an incremental timeline and, if that
timeline is limited, the state that changed in the gap; a room joined inside
the window gets full state, as on an initial sync.  Timelines carry
``prev_batch`` so /messages can page back to whatever was cut.

An initial sync lists the rooms the user was removed from (kicked, banned, a
knock or invite refused by someone else) under ``leave`` even without
``include_leave``, so a fresh login learns it was removed; only rooms the user
left itself need ``include_leave``.  A ``full_state`` sync lists rooms as an
initial sync does, each with its full state.  Synapse behaves the same.
"""

from __future__ import annotations

import time
from collections.abc import Coroutine
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred

from homeserver.handlers.rooms.event_format import txn_scope_for
from homeserver.handlers.rooms.partial_state import PartialStateRooms
from homeserver.server import Server
from homeserver.sync.filtering import SyncFilter, select_fields
from homeserver.sync.provider import SyncRequest
from homeserver.sync.providers.common import (
    filter_key,
    joined_room_entry,
    request_filter,
    room_entry,
)
from homeserver.sync.providers.room_state import RoomStateReader, room_summaries
from homeserver.sync.providers.shared_rooms import (
    SharedRoom,
    SharedRooms,
    encodings,
    format_for_sharing,
    reader_copy,
    reader_encoded,
)
from homeserver.sync.room_data import (
    STRIPPED_STATE_TYPES,
    Formatter,
    format_events,
    prev_batch_token,
    stripped,
    visible_to,
)
from storage.room_stream_cache import RoomStreamCache
from storage.stores.events import EventFilter as SqlEventFilter
from storage.stores.events import EventStore, StoredEvent
from storage.stores.room_members import RoomMemberStore
from storage.stores.sync_events import MembershipAt, SyncEventsStore

JOIN, INVITE, LEAVE, BAN, KNOCK = "join", "invite", "leave", "ban", "knock"
# Rooms an initial sync builds at once: below the PostgreSQL pool's default ten connections.
INITIAL_ROOMS_AT_ONCE = 8


def shows_left_room(user_id: str, membership: MembershipAt, include_leave: bool) -> bool:
    """Does an initial (or full-state) sync list this left room? Removals always, own leaves on request."""
    if membership.membership == BAN:
        return True
    return membership.membership == LEAVE and (include_leave or membership.sender != user_id)


def _starts_room(found: dict[str, StoredEvent], ids: list[str]) -> bool:
    """Is the first of ``ids`` the room's create event, so that they are all of its history?"""
    first = found.get(ids[0]) if ids else None
    return first is not None and first.event.type == "m.room.create" and first.event.state_key == ""


def formatter_for(request: SyncRequest) -> Formatter:
    return Formatter(request.user_id, request.device_id, request.access_token_id)


async def render(hs: Server, request: SyncRequest, sync_filter: SyncFilter,
                 events: list[StoredEvent]) -> list[dict[str, Any]]:
    """Events as the filter asks: client format (or the raw PDU), then event_fields."""
    if sync_filter.event_format == "federation":
        shown = [dict(e.event.pdu) for e in events]
    else:
        shown = await format_events(hs, events, formatter_for(request))
    return [select_fields(event, sync_filter.event_fields) for event in shown]


class RoomsProvider:
    stream = "events"

    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.events: EventStore = hs.get(EventStore)
        self.members: RoomMemberStore = hs.get(RoomMemberStore)
        self.sync_store: SyncEventsStore = hs.get(SyncEventsStore)
        self.state = RoomStateReader(hs)
        self.recent: RoomStreamCache = hs.get(RoomStreamCache)
        self.shared: SharedRooms = hs.get(SharedRooms)
        self.partial = hs.get(PartialStateRooms)
        self._position = 0

    async def prepare(self) -> None:
        self._position = await self.events.get_max_stream_position()

    def current_position(self) -> int:
        return self._position

    async def _memberships_at(self, user_id: str, upto: int) -> dict[str, MembershipAt]:
        """The user's membership in every room as of ``upto`` (current rows, rewound if newer)."""
        current = await self.members.get_rooms_with_membership(user_id)
        result = {room: MembershipAt(m.membership, m.event_id, m.stream_ordering, m.sender)
                  for room, m in current.items() if m.stream_ordering <= upto}
        newer = [room for room, m in current.items() if m.stream_ordering > upto]
        if newer:
            result.update(await self.sync_store.memberships_at(user_id, newer, upto))
        return result

    async def build(self, request: SyncRequest, since: int | None, upto: int,
                    response: dict[str, Any], context: dict[str, Any]) -> None:
        sync_filter = request_filter(request, context)
        now = await self._memberships_at(request.user_id, upto)
        joined = {room for room, m in now.items() if m.membership == JOIN}
        context["joined_rooms"] = joined
        context["events_upto"] = upto
        context["rooms_needing_summary"] = set()
        context["newly_joined_rooms"] = set()
        # Rooms joined with partial state are left out until their member list is whole,
        # unless the client lazy-loads members (homeserver/handlers/rooms/partial_state.py).
        if not sync_filter.lazy_load_members and await self.partial.is_any_partial():
            partial = await self.partial.partial_rooms()
            now = {room: m for room, m in now.items() if m.membership != JOIN or room not in partial}
        if since is None:
            await self._initial(request, sync_filter, now, upto, response, context)
        else:
            await self._incremental(request, sync_filter, now, since, upto, response, context)

    async def _initial(self, request: SyncRequest, sync_filter: SyncFilter,
                       now: dict[str, MembershipAt], upto: int, response: dict[str, Any],
                       context: dict[str, Any]) -> None:
        """Rooms are built a few at a time: each costs several store round trips, which on
        PostgreSQL overlap on the database threads instead of queueing one room after another."""
        jobs: list[Coroutine[Any, Any, None]] = []
        for room_id, membership in sorted(now.items()):
            if not sync_filter.allows_room(room_id):
                continue
            if membership.membership == JOIN:
                joined_room_entry(response, room_id)  # entries keep the sorted order
                jobs.append(self._joined_room(request, sync_filter, room_id, None, upto, True,
                                              response, context))
            else:
                jobs.append(self._not_joined_room(request, sync_filter, room_id, membership, None, response))
        slots = defer.DeferredSemaphore(INITIAL_ROOMS_AT_ONCE)

        async def one(job: Coroutine[Any, Any, None]) -> None:
            await slots.acquire()
            try:
                await job
            finally:
                slots.release()

        await defer.gatherResults([Deferred.fromCoroutine(one(job)) for job in jobs], consumeErrors=True)

    async def _not_joined_room(self, request: SyncRequest, sync_filter: SyncFilter, room_id: str,
                               membership: MembershipAt, since: int | None,
                               response: dict[str, Any]) -> None:
        """An invited, knocking or left room as an initial or full-state sync shows it."""
        if membership.membership == INVITE:
            await self._invite_or_knock(room_id, membership, "invite", response)
        elif membership.membership == KNOCK:
            await self._invite_or_knock(room_id, membership, "knock", response)
        elif shows_left_room(request.user_id, membership, sync_filter.include_leave):
            await self._left_room(request, sync_filter, room_id, membership, since, response, full=True)

    async def _incremental(self, request: SyncRequest, sync_filter: SyncFilter,
                           now: dict[str, MembershipAt], since: int, upto: int,
                           response: dict[str, Any], context: dict[str, Any]) -> None:
        recent = self.recent
        if recent.membership_changed_since(request.user_id, since):
            changes = await self.members.get_membership_changes_for_user(request.user_id, since, upto)
        else:
            changes = []  # the common wake-up: known from memory, no query
        changed_rooms = {change.room_id for change in changes}
        before = await self.sync_store.memberships_at(request.user_id, changed_rooms, since)
        # A room whose partial state was completed since then is new to a client that was not
        # shown it while partial: it gets it as a newly joined room, whole state included.
        completed = set() if sync_filter.lazy_load_members else \
            {room for room, at in (await self.partial.completed_since(since)).items() if at <= upto}
        full_state = request.full_state
        if full_state:
            with_events: set[str] = set()
        elif recent.covers(since):
            with_events = {room for room in now if recent.room_changed_since(room, since)}
        else:
            with_events = await self.sync_store.rooms_with_events(since, upto)
        for room_id, membership in sorted(now.items()):
            if not sync_filter.allows_room(room_id):
                continue
            was = before.get(room_id)
            was_joined = was is not None and was.membership == JOIN
            if room_id not in changed_rooms:
                was_joined = membership.membership == JOIN
            if room_id in completed and membership.membership == JOIN:
                was_joined = False
            if membership.membership == JOIN:
                if not was_joined:
                    context["newly_joined_rooms"].add(room_id)
                    await self._joined_room(request, sync_filter, room_id, None, upto, True,
                                            response, context)
                elif full_state or room_id in with_events:
                    await self._joined_room(request, sync_filter, room_id, since, upto, full_state,
                                            response, context)
            elif room_id not in changed_rooms:
                if full_state:
                    await self._not_joined_room(request, sync_filter, room_id, membership, since, response)
            elif membership.membership == INVITE:
                await self._invite_or_knock(room_id, membership, "invite", response)
            elif membership.membership == KNOCK:
                await self._invite_or_knock(room_id, membership, "knock", response)
            elif membership.membership in (LEAVE, BAN):
                await self._left_room(request, sync_filter, room_id, membership,
                                      since if was_joined else membership.stream_ordering - 1,
                                      response, full=full_state)

    async def _timeline(self, request: SyncRequest, sync_filter: SyncFilter, room_id: str,
                        since: int | None, upto: int) -> tuple[list[StoredEvent], bool]:
        """The newest events in (since, upto] passing the filter, oldest first, and "limited"."""
        events, limited = await self._candidates(sync_filter, room_id, since, upto)
        return await visible_to(self.hs, request.user_id, events), limited

    async def _candidates(self, sync_filter: SyncFilter, room_id: str, since: int | None,
                          upto: int) -> tuple[list[StoredEvent], bool]:
        """The timeline before history visibility: the same for every reader."""
        timeline = sync_filter.timeline
        limit = timeline.limit if timeline.limit is not None else 10
        if timeline.blocks_everything or not timeline.allows_room(room_id):
            return [], False
        sql_filter = SqlEventFilter(
            types=timeline.types, not_types=timeline.not_types, senders=timeline.senders,
            not_senders=timeline.not_senders, contains_url=timeline.contains_url,
        )
        found = await self._recent_events(room_id, since, upto, limit + 1, sql_filter)
        if found is None:
            found = await self.events.get_room_events_between(room_id, since or 0, upto, limit + 1,
                                                              newest_first=True, event_filter=sql_filter)
        limited = len(found) > limit
        events = list(reversed(found[:limit]))
        return [e for e in events if timeline.allows_type(e.event.type)], limited

    async def _recent_events(self, room_id: str, since: int | None, upto: int, count: int,
                             sql_filter: SqlEventFilter) -> list[StoredEvent] | None:
        """The newest ``count`` matching events in (since, upto], newest first, from the in-memory
        window (storage/room_stream_cache.py); None when it does not reach back to ``since``.

        With no ``since`` (an initial sync) the window answers when it holds ``count`` matching
        events, or the room's whole history (it starts at the room's create event)."""
        floor = self.recent.floor
        start = since if since is not None else floor
        if start is None:
            return None
        ids = self.recent.room_events_between(room_id, start, upto)
        if ids is None:
            return None
        found = await self.events.get_events(ids)
        if since is None and not _starts_room(found, ids):
            events = self._window_matches(found, ids, count, sql_filter)
            return events if len(events) == count else None
        return self._window_matches(found, ids, count, sql_filter)

    @staticmethod
    def _window_matches(found: dict[str, StoredEvent], ids: list[str], count: int,
                        sql_filter: SqlEventFilter) -> list[StoredEvent]:
        # Purged events are gone from the store; redacted ones come back redacted.
        events = []
        for event_id in reversed(ids):
            stored = found.get(event_id)
            if stored is not None and stored.in_timeline and sql_filter.matches(stored):
                events.append(stored)
                if len(events) == count:
                    break
        return events

    async def _joined_room(self, request: SyncRequest, sync_filter: SyncFilter, room_id: str,
                           since: int | None, upto: int, full_state: bool,
                           response: dict[str, Any], context: dict[str, Any]) -> None:
        if since is not None and not full_state and context.get("fast") \
                and sync_filter.event_fields is None and sync_filter.event_format == "client":
            if await self._shared_room(request, sync_filter, room_id, since, upto, response, context):
                return
        events, limited = await self._timeline(request, sync_filter, room_id, since, upto)
        if since is not None and not events and not full_state:
            return
        state_events = await self.state.state_section(
            request.user_id, sync_filter, room_id, events, since, upto,
            full_state or since is None, limited,
        )
        entry = joined_room_entry(response, room_id)
        await self._fill_timeline(request, sync_filter, entry, events, limited, upto)
        entry["state"]["events"] = await render(self.hs, request, sync_filter, state_events)
        touches_members = since is None or any(
            e.event.type == "m.room.member" for e in [*events, *state_events])
        if touches_members:
            context["rooms_needing_summary"].add(room_id)

    async def _shared_room(self, request: SyncRequest, sync_filter: SyncFilter, room_id: str,
                           since: int, upto: int, response: dict[str, Any], context: dict[str, Any]) -> bool:
        """The room from the entry its other readers share (shared_rooms.py); False: not possible
        for this reader, build its own."""
        key = (room_id, since, upto, filter_key(request), self.events.invalidations)

        async def build() -> SharedRoom:
            events, limited = await self._candidates(sync_filter, room_id, since, upto)
            state_events = await self.state.state_section(
                "", sync_filter, room_id, events, since, upto, False, limited)
            timeline, state, shareable = await format_for_sharing(self.hs, events, state_events)
            first = events[0].stream_ordering if events else upto + 1
            touches = any(e.event.type == "m.room.member" for e in [*events, *state_events])
            return SharedRoom(events, limited, prev_batch_token(first - 1), state_events, timeline, state,
                              touches, shareable, encodings(timeline) if shareable else [],
                              encodings(state) if shareable else [])

        shared = await self.shared.get(key, build)
        if shared is None or not shared.shareable:
            return False
        visible = await visible_to(self.hs, request.user_id, shared.events)
        if len(visible) != len(shared.events):
            return False  # history visibility hides some of them from this reader
        if not visible:
            return True
        scope = txn_scope_for(request.user_id, request.device_id, request.access_token_id)
        entry = joined_room_entry(response, room_id)
        if context.get("encoded"):  # the transport splices the shared text (sync/encoded.py)
            now = int(time.time() * 1000)
            timeline: list[Any] = reader_encoded(shared.events, shared.timeline_encoded, scope, now)
            state: list[Any] = reader_encoded(shared.state_events, shared.state_encoded, scope, now)
        else:
            timeline = reader_copy(request, shared.events, shared.timeline, scope)
            state = reader_copy(request, shared.state_events, shared.state, scope)
        entry["timeline"] = {"events": timeline, "limited": shared.limited, "prev_batch": shared.prev_batch}
        entry["state"]["events"] = state
        if shared.touches_members:
            context["rooms_needing_summary"].add(room_id)
        return True

    async def _fill_timeline(self, request: SyncRequest, sync_filter: SyncFilter,
                             entry: dict[str, Any], events: list[StoredEvent], limited: bool,
                             upto: int) -> None:
        timeline = entry["timeline"]
        timeline["events"] = await render(self.hs, request, sync_filter, events)
        timeline["limited"] = limited
        first = events[0].stream_ordering if events else upto + 1
        timeline["prev_batch"] = prev_batch_token(first - 1)

    async def _left_room(self, request: SyncRequest, sync_filter: SyncFilter, room_id: str,
                         membership: MembershipAt, since: int | None,
                         response: dict[str, Any], full: bool = False) -> None:
        """The room up to the leave/ban event, as the user last saw it (``full``: all its state)."""
        upto = membership.stream_ordering
        events, limited = await self._timeline(request, sync_filter, room_id, since, upto)
        own = await self.events.get_event(membership.event_id)
        if own is not None and own.outlier and (since is None or own.stream_ordering > since):
            events.append(own)  # an out-of-band leave (a rejected invite): no timeline of its own
        state_events = await self.state.state_section(
            request.user_id, sync_filter, room_id, events, since, upto, full or since is None, limited)
        entry = room_entry(response, "leave", room_id)
        entry.update({"timeline": {"events": [], "limited": False}, "state": {"events": []},
                      "account_data": {"events": []}})
        await self._fill_timeline(request, sync_filter, entry, events, limited, upto)
        entry["state"]["events"] = await render(self.hs, request, sync_filter, state_events)

    async def _invite_or_knock(self, room_id: str, membership: MembershipAt, section: str,
                               response: dict[str, Any]) -> None:
        own = await self.events.get_event(membership.event_id)
        shown: list[dict[str, Any]] = []
        if own is not None:
            carried = own.event.pdu.get("unsigned", {}).get(
                "invite_room_state" if section == "invite" else "knock_room_state")
            if isinstance(carried, list):
                shown = [e for e in carried if isinstance(e, dict)]
        if not shown:
            shown = [stripped(e) for e in await self.state.current_of_types(room_id, STRIPPED_STATE_TYPES)]
        if own is not None:
            shown.append(stripped(own))
        key = "invite_state" if section == "invite" else "knock_state"
        room_entry(response, section, room_id)[key] = {"events": shown}

    async def finish(self, request: SyncRequest, response: dict[str, Any],
                     context: dict[str, Any]) -> None:
        joined = response.get("rooms", {}).get("join", {})
        upto = context["events_upto"]
        # Batched over rooms: per-room reads cost a round trip each on PostgreSQL.
        per_thread = request_filter(request, context).unread_thread_notifications
        unread = await self.state.unread_counts_in_rooms(request.user_id, list(joined), upto, per_thread)
        needing = [room for room in joined if room in context.get("rooms_needing_summary", ())]
        summaries = await room_summaries(self.hs, request.user_id, needing)
        for room_id, entry in joined.items():
            entry.update(unread[room_id])
            if room_id in summaries:
                entry["summary"] = summaries[room_id]
