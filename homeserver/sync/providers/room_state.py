"""The state section of a room in sync, its summary and its unread counts."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import attrs

from homeserver.handlers.push.notifications import PushRuleEvaluator
from homeserver.server import Server
from homeserver.sync.filtering import SyncFilter
from storage.room_stream_cache import RoomStreamCache
from storage.stores.current_state import CurrentStateStore
from storage.stores.events import EventStore, StoredEvent
from storage.stores.push_actions import MAIN_THREAD, Counts, PushActionsStore, RoomCounts
from storage.stores.room_members import RoomMemberStore
from storage.stores.state import StateGroupStore, StateKey, StateMap
from storage.stores.sync_events import SyncEventsStore

MAX_HEROES = 5


class RoomStateReader:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.events: EventStore = hs.get(EventStore)
        self.groups: StateGroupStore = hs.get(StateGroupStore)
        self.sync_store: SyncEventsStore = hs.get(SyncEventsStore)
        self.current: CurrentStateStore = hs.get(CurrentStateStore)
        self.recent: RoomStreamCache = hs.get(RoomStreamCache)

    async def state_at(self, room_id: str, position: int) -> Mapping[StateKey, str]:
        """Room state after the room's last event at or before ``position`` (shared: read only)."""
        known, group = self.recent.state_group_at(room_id, position)
        if not known:
            group = await self.sync_store.state_group_at(room_id, position)
            self.recent.remember_state_at_floor(room_id, position, group)
        return {} if group is None else await self.groups.get_state_ids_shared(group)

    async def state_section(self, user_id: str, sync_filter: SyncFilter, room_id: str,
                            timeline: Sequence[StoredEvent], since: int | None, upto: int,
                            full: bool, limited: bool) -> list[StoredEvent]:
        """State the client needs before applying ``timeline``.

        Full (initial, newly joined, full_state): the whole state at the start of
        the timeline.  Incremental and limited: only what changed between
        ``since`` and the timeline's start.  Otherwise the timeline says it all,
        except lazy-loaded members of the timeline's senders.
        """
        lazy = sync_filter.lazy_load_members
        if not full and not limited and not lazy:
            return []
        start = timeline[0].stream_ordering - 1 if timeline else upto
        at_start = await self.state_at(room_id, start)
        if not at_start and timeline:
            # A room joined over federation has no position before our join event: its
            # state then is the state the join came with, i.e. the state after the first
            # timeline event less that event (left out below, as it is in the timeline).
            at_start = await self.state_at(room_id, timeline[0].stream_ordering)
        wanted: StateMap
        if full:
            wanted = dict(at_start)
        elif limited:
            assert since is not None
            at_since = await self.state_at(room_id, since)
            wanted = {key: eid for key, eid in at_start.items() if at_since.get(key) != eid}
        else:
            wanted = {}
        state_filter = sync_filter.state
        senders = {e.event.sender for e in timeline}
        if lazy:
            wanted = {key: eid for key, eid in wanted.items()
                      if key[0] != "m.room.member" or key[1] in senders
                      or (full and key[1] == user_id)}
            for sender in senders:
                member_event = at_start.get(("m.room.member", sender))
                if member_event is not None:
                    wanted[("m.room.member", sender)] = member_event
        in_timeline = {e.event_id for e in timeline}
        ids = [eid for key, eid in wanted.items()
               if eid not in in_timeline and state_filter.allows_type(key[0])]
        if state_filter.blocks_everything:
            return []
        found = await self.events.get_events(ids)
        events = [e for e in found.values()
                  if state_filter.allows({"type": e.event.type, "sender": e.event.sender,
                                          "room_id": room_id, "content": e.event.content})]
        events.sort(key=lambda e: e.stream_ordering)
        return events

    async def current_of_types(self, room_id: str, types: Sequence[str]) -> list[StoredEvent]:
        state = await self.current.get_current_state_ids(room_id)
        ids = [eid for (event_type, _key), eid in state.items() if event_type in types]
        found = await self.events.get_events(ids)
        return sorted(found.values(), key=lambda e: e.stream_ordering)

    async def unread_counts_in_rooms(self, user_id: str, room_ids: Collection[str], upto: int,
                                     per_thread: bool) -> dict[str, dict[str, Any]]:
        """``unread_notifications`` (and, when asked, ``unread_thread_notifications``) per room:
        the push actions after the user's read receipts (homeserver/handlers/push/).

        Waits until push evaluation has caught up with ``upto``, so the counts cover every
        event this sync shows; one transaction for all rooms.
        """
        if not room_ids:
            return {}
        await self.hs.get(PushRuleEvaluator).wait_for(upto)
        counts = await self.hs.get(PushActionsStore).get_unread_counts(user_id, room_ids, upto)
        return {room: _unread_entry(by_thread, per_thread) for room, by_thread in counts.items()}


def _counts(counts: Counts) -> dict[str, int]:
    return {"notification_count": counts.notifications, "highlight_count": counts.highlights}


def _unread_entry(by_thread: RoomCounts, per_thread: bool) -> dict[str, Any]:
    if not per_thread:
        total = Counts(sum(c.notifications for c in by_thread.values()),
                       sum(c.highlights for c in by_thread.values()))
        return {"unread_notifications": _counts(total)}
    main = by_thread.get(MAIN_THREAD, Counts())
    threads = {thread: _counts(c) for thread, c in sorted(by_thread.items()) if thread != MAIN_THREAD}
    return {"unread_notifications": _counts(main), "unread_thread_notifications": threads}


async def room_summaries(hs: Server, user_id: str, room_ids: Collection[str]) -> dict[str, dict[str, Any]]:
    """m.heroes, m.joined_member_count and m.invited_member_count (spec: RoomSummary) per room."""
    by_room = await hs.get(RoomMemberStore).get_memberships_in_rooms(room_ids)
    return {room: summary_of(user_id, memberships) for room, memberships in by_room.items()}


@attrs.frozen
class _Members:
    """A room's members sorted once for every member's summary (the heroes skip only the reader)."""

    joined: list[str]
    invited: list[str]
    gone: list[str]


#: id(memberships dict) -> (that dict, its sorted members): the store hands out the same dict
#: until a membership in the room changes, so the sort is done once per change, not per reader.
_SORTED: dict[int, tuple[dict[str, str], _Members]] = {}
_MAX_SORTED = 10_000


def _sorted_members(memberships: dict[str, str]) -> _Members:
    found = _SORTED.get(id(memberships))
    if found is not None and found[0] is memberships:
        return found[1]
    members = _Members(sorted(u for u, m in memberships.items() if m == "join"),
                       sorted(u for u, m in memberships.items() if m == "invite"),
                       sorted(u for u, m in memberships.items() if m in ("leave", "ban")))
    if len(_SORTED) >= _MAX_SORTED:
        _SORTED.clear()
    _SORTED[id(memberships)] = (memberships, members)
    return members


def _first_heroes(users: list[str], user_id: str) -> list[str]:
    heroes = []
    for user in users:
        if user != user_id:
            heroes.append(user)
            if len(heroes) == MAX_HEROES:
                break
    return heroes


def summary_of(user_id: str, memberships: dict[str, str]) -> dict[str, Any]:
    """The RoomSummary of a room whose memberships are {user_id: membership}."""
    members = _sorted_members(memberships)
    heroes = _first_heroes(members.joined, user_id)
    if len(heroes) < MAX_HEROES:
        heroes += _first_heroes(members.invited, user_id)[:MAX_HEROES - len(heroes)]
    if not heroes:
        heroes = _first_heroes(members.gone, user_id)
    return {"m.heroes": heroes, "m.joined_member_count": len(members.joined),
            "m.invited_member_count": len(members.invited)}
