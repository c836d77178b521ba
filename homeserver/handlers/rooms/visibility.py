"""History visibility: which events a user may see. Every read path goes through here.

`filter_events_for_client(hs, user_id, events)` applies m.room.history_visibility as
it stood at each event, and the user's membership at that event:

- world_readable: everyone;
- joined at the event: visible;
- joined: nothing else;
- invited: also while the user was invited;
- shared: also everything else, for a user who is joined now; a user who left or
  was banned keeps it up to the point they left.

A user always sees their own leave after a join or an invite (so a rejected
invite or a kick shows up). The sync area calls this same function, with
``by_group``: an event whose state has the user joined is visible, whatever else
holds, so for the members a big room's message wakes that is answered from one
set per state group (``JoinedInGroup``) instead of state lookups per member.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from homeserver.server import Server
from storage.stores.events import EventStore, StoredEvent
from storage.stores.room_members import Membership, RoomMemberStore
from storage.stores.state import StateGroupStore

HISTORY_KEY = ("m.room.history_visibility", "")
VISIBILITY_PRIORITY = ("world_readable", "shared", "invited", "joined")
MEMBERSHIP_PRIORITY = ("join", "invite", "knock", "leave", "ban")
#: State groups whose joined members are kept (a group never changes, so neither does its set).
JOINED_GROUPS_KEPT = 256


def _visibility(content: dict[str, Any]) -> str:
    value = content.get("history_visibility")
    return value if value in VISIBILITY_PRIORITY else "shared"


def _membership(value: Any) -> str:
    return value if value in MEMBERSHIP_PRIORITY else "leave"


class JoinedInGroup:
    """Who is joined in a state group, computed once per group for every reader of it."""

    def __init__(self, hs: Server) -> None:
        self.groups = hs.get(StateGroupStore)
        self.events = hs.get(EventStore)
        self._joined: OrderedDict[int, frozenset[str]] = OrderedDict()

    async def joined(self, group: int) -> frozenset[str]:
        found = self._joined.get(group)
        if found is not None:
            self._joined.move_to_end(group)
            return found
        state = await self.groups.get_state_ids_shared(group)
        members = {key[1]: event_id for key, event_id in state.items() if key[0] == "m.room.member"}
        member_events = await self.events.get_events(members.values())
        found = frozenset(user for user, event_id in members.items()
                          if (stored := member_events.get(event_id)) is not None
                          and _membership(stored.event.membership) == "join")
        self._joined[group] = found
        if len(self._joined) > JOINED_GROUPS_KEPT:
            self._joined.popitem(last=False)
        return found

    async def all_joined(self, user_id: str, events: Sequence[StoredEvent]) -> bool:
        """Was the user joined in the state of every event (none of them their own membership)?
        Then ``_allowed`` says yes to each: membership "join" returns before anything else."""
        for stored in events:
            event = stored.event
            if stored.state_group is None or (event.type == "m.room.member" and event.state_key == user_id):
                return False
            if user_id not in await self.joined(stored.state_group):
                return False
        return True


async def filter_events_for_client(hs: Server, user_id: str, events: Sequence[StoredEvent],
                                   by_group: bool = False) -> list[StoredEvent]:
    """The events `user_id` may see, in the order given.

    Outliers, rejected and soft-failed events are never seen, whoever asks. ``by_group``:
    first try the shared per-group sets (module docstring), worth it when many members
    read the same new events.
    """
    events = [stored for stored in events if stored.in_timeline]
    if not events:
        return []
    if by_group and await hs.get(JoinedInGroup).all_joined(user_id, events):
        return events
    event_store = hs.get(EventStore)
    groups = hs.get(StateGroupStore)
    member_key = ("m.room.member", user_id)
    state_by_group = await groups.get_state_ids_filtered_many(
        [stored.state_group for stored in events if stored.state_group is not None], keys=(HISTORY_KEY, member_key)
    )
    needed = {i for state in state_by_group.values() for i in state.values()}
    needed |= {s.replaces_state for s in events if s.replaces_state and _is_relevant(s, user_id)}
    state_events = await event_store.get_events(needed)

    current: dict[str, Membership | None] = {}
    members = hs.get(RoomMemberStore)
    for room_id in {s.event.room_id for s in events}:
        current[room_id] = await members.get_membership(room_id, user_id)

    visible = []
    for stored in events:
        assert stored.state_group is not None  # every timeline event has its state
        state = state_by_group[stored.state_group]
        if _allowed(stored, user_id, state, state_events, current.get(stored.event.room_id)):
            visible.append(stored)
    return visible


def _is_relevant(stored: StoredEvent, user_id: str) -> bool:
    event = stored.event
    return event.type == HISTORY_KEY[0] or (event.type == "m.room.member" and event.state_key == user_id)


def _allowed(stored: StoredEvent, user_id: str, state: dict[tuple[str, str], str],
             state_events: dict[str, StoredEvent], current: Membership | None) -> bool:
    event = stored.event
    history = state_events.get(state.get(HISTORY_KEY, ""))
    visibility = _visibility(history.event.content) if history is not None else "shared"
    if event.type == HISTORY_KEY[0] and stored.replaces_state:
        previous = state_events.get(stored.replaces_state)
        if previous is not None:
            old = _visibility(previous.event.content)
            if VISIBILITY_PRIORITY.index(old) < VISIBILITY_PRIORITY.index(visibility):
                visibility = old
    if visibility == "world_readable":
        return True

    member = state_events.get(state.get(("m.room.member", user_id), ""))
    membership = _membership(member.event.membership) if member is not None else None
    if event.type == "m.room.member" and event.state_key == user_id:
        membership = _membership(event.membership)
        previous = state_events.get(stored.replaces_state or "")
        old = _membership(previous.event.membership) if previous is not None else "leave"
        if membership == "leave" and old in ("join", "invite"):
            return True
        if MEMBERSHIP_PRIORITY.index(old) < MEMBERSHIP_PRIORITY.index(membership):
            membership = old

    if membership == "join":
        return True
    if visibility == "joined":
        return False
    if visibility == "invited":
        return membership == "invite"
    # shared: at least as open as invited
    if membership == "invite":
        return True
    if current is None:
        return False
    if current.membership == "join":
        return True
    if current.membership in ("leave", "ban"):
        return stored.stream_ordering <= current.stream_ordering
    return False
