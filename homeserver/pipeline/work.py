"""One batch of a room's events while the pipeline works on it, before it is persisted.

`RoomWork` holds what the batch has decided so far (the events, their state, the new
head) and answers the questions every stage asks: which events do we hold, what is the
state after an event, what is the state before an event with these prev_events
(resolving forks with the kernel's state resolution), and what do the extremities and
the current state become when an event is accepted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

from homeserver.events.event import Event
from homeserver.events.stateres import resolve_state
from homeserver.pipeline.head import RoomHead, StateAt
from homeserver.pipeline.types import EventSpec, NewRoom, Outcome
from homeserver.server import Server
from storage.stores.events import EventStore, StoredEvent
from storage.stores.events_persist import NewStateGroup
from storage.stores.room_dag import RoomDagStore
from storage.stores.state import SNAPSHOT_INTERVAL, StateGroupStore, StateKey, StateMap

#: Most prev_events a local event cites (the spec's limit on a PDU is 20).
MAX_PREV_EVENTS = 10
#: Most hidden (rejected or soft-failed) events walked back through when an accepted
#: event cites one, to retire the extremities they stood on.
MAX_HIDDEN_WALK = 100


@attrs.define
class Prepared:
    """One event the batch will write, with everything the stages decided about it."""

    event: Event
    outcome: Outcome
    reason: str | None = None
    #: State before and after the event (None for outliers). A rejected event's
    #: state after is its state before.
    before: StateAt | None = None
    after: StateAt | None = None
    #: Stored without state (an outlier, which may also be rejected).
    outlier: bool = False
    #: The event was stored as an outlier and now joins the DAG.
    deoutlier: bool = False
    spec: EventSpec | None = None
    origin: str | None = None
    #: prev_events we do not have (they become backward extremities).
    missing_prevs: tuple[str, ...] = ()
    #: The group of the room's current state, when accepting this event changed it.
    current_group: int | None = None
    #: An outlier that is a local user's membership in a room we are not in
    #: (pipeline/out_of_band.py): it takes a stream position and sets the membership.
    out_of_band: bool = False
    #: History from /backfill: in the DAG, but below the live stream (a negative ordering).
    backfilled: bool = False
    #: A remote m.room.redaction that may take effect on its target (the redact level, or the
    #: target's own server); a local one was checked before it was built.
    applies_redaction: bool = False
    #: A remote redaction whose target we do not hold: waits for it, privileged (True: the
    #: redact level) or not (then only for a target sent from the redacter's server).
    pending_redaction: bool | None = None

    @property
    def in_dag(self) -> bool:
        return not self.outlier

    @property
    def streamed(self) -> bool:
        """Takes a place in the live stream (DAG events and out-of-band memberships)."""
        return (self.in_dag and not self.backfilled) or self.out_of_band

    @property
    def hidden(self) -> bool:
        return self.outcome in (Outcome.REJECTED, Outcome.SOFT_FAILED)


@attrs.define
class _Mark:
    items: int
    groups: int
    head: RoomHead | None
    new_room: NewRoom | None


class RoomWork:
    def __init__(self, hs: Server, room_id: str, head: RoomHead | None) -> None:
        self.room_id = room_id
        self.events: EventStore = hs.get(EventStore)
        self.groups: StateGroupStore = hs.get(StateGroupStore)
        self.dag: RoomDagStore = hs.get(RoomDagStore)
        self.head = head
        #: The current state and extremities as committed, to derive the batch's delta.
        self.initial_state: StateMap = head.state if head is not None else {}
        self.initial_extremities: set[str] = set(head.extremities) if head is not None else set()
        #: The current-state keys the batch changed, while known without comparing whole
        #: maps (None once a resolution or a given state replaced the current state).
        self.touched: set[StateKey] | None = set()
        self.items: list[Prepared] = []
        self.known: dict[str, Prepared] = {}
        self.new_groups: list[NewStateGroup] = []
        self.new_room: NewRoom | None = None
        self._stored: dict[str, StoredEvent] = {}
        #: The room was joined with partial state (MSC3706): most members are missing from
        #: its state, so a remote event's member auth events are taken from those it cites.
        self.partial = False

    # -- checkpoints: a local submission is all-or-nothing --------------------------

    def mark(self) -> _Mark:
        return _Mark(len(self.items), len(self.new_groups),
                     self.head.copy() if self.head is not None else None, self.new_room)

    def rollback(self, mark: _Mark) -> None:
        for item in self.items[mark.items:]:
            self.known.pop(item.event.event_id, None)
        del self.items[mark.items:]
        del self.new_groups[mark.groups:]
        self.head = mark.head
        self.new_room = mark.new_room

    def add(self, item: Prepared) -> None:
        self.items.append(item)
        self.known[item.event.event_id] = item

    # -- events --------------------------------------------------------------------

    async def stored(self, event_ids: Iterable[str]) -> dict[str, StoredEvent]:
        """Stored events by ID (any status), remembered for the rest of the batch."""
        wanted = [i for i in dict.fromkeys(event_ids) if i not in self._stored]
        if wanted:
            self._stored.update(await self.events.get_events(wanted))
        return {i: self._stored[i] for i in event_ids if i in self._stored}

    async def get_events(self, event_ids: Iterable[str]) -> dict[str, Event]:
        """Events from this batch or the store, by ID (missing ones are absent)."""
        ids = list(event_ids)
        found = {i: self.known[i].event for i in ids if i in self.known}
        rest = [i for i in ids if i not in found]
        if rest:
            found.update((i, s.event) for i, s in (await self.stored(rest)).items())
        return found

    async def is_rejected(self, event_ids: Iterable[str]) -> list[str]:
        ids = list(event_ids)
        rejected = [i for i in ids if i in self.known and self.known[i].outcome is Outcome.REJECTED]
        stored = await self.stored([i for i in ids if i not in self.known])
        rejected.extend(i for i, s in stored.items() if s.rejected)
        return rejected

    # -- state ---------------------------------------------------------------------

    async def state_after(self, event_id: str) -> StateAt | None:
        """The state after an event of the DAG; None if it is unknown or an outlier."""
        item = self.known.get(event_id)
        if item is not None:
            return item.after
        stored = (await self.stored([event_id])).get(event_id)
        if stored is None or stored.outlier or stored.state_group is None:
            return None
        group = stored.state_group
        return StateAt(await self.groups.get_state_ids(group), group,
                       await self.groups.get_chain_length(group))

    async def state_before(self, prev_ids: Sequence[str]) -> StateAt | None:
        """The state before an event citing ``prev_ids`` (None if any is missing)."""
        head = self.head
        if head is not None and head.current is not None and set(prev_ids) == set(head.extremities):
            return head.current
        states = []
        for prev_id in prev_ids:
            state = await self.state_after(prev_id)
            if state is None:
                return None
            states.append(state)
        return await self.resolve(states)

    async def resolve(self, states: Sequence[StateAt]) -> StateAt:
        """The kernel's state resolution over several states, held in a (new) group."""
        distinct = list({state.group: state for state in states}.values())
        if len(distinct) == 1:
            return distinct[0]
        assert self.head is not None
        maps = [state.state for state in distinct]
        event_map = await self._events_for_resolution(maps)
        rejected = {i for i in event_map if await self._was_rejected(i)}
        resolved = resolve_state(self.head.room_version, maps, event_map, rejected_event_ids=rejected)
        return await self.state_group_for(resolved, base=distinct[0])

    async def _was_rejected(self, event_id: str) -> bool:
        item = self.known.get(event_id)
        if item is not None:
            return item.outcome is Outcome.REJECTED
        stored = self._stored.get(event_id)
        return stored is not None and stored.rejected

    async def _events_for_resolution(self, maps: Sequence[StateMap]) -> dict[str, Event]:
        """Every event the state maps name, and their whole auth chains."""
        wanted = {event_id for state in maps for event_id in state.values()}
        found: dict[str, Event] = {}
        # Walk this batch's events in memory; the stored rest in one query.
        frontier = set(wanted)
        stored_roots: set[str] = set()
        while frontier:
            event_id = frontier.pop()
            if event_id in found:
                continue
            item = self.known.get(event_id)
            if item is None:
                stored_roots.add(event_id)
                continue
            found[event_id] = item.event
            frontier.update(item.event.auth_event_ids)
        chain = await self.dag.get_auth_chain_ids(stored_roots) if stored_roots else set()
        found.update(await self.get_events(stored_roots | chain))
        return found

    async def state_group_for(self, state: StateMap, base: StateAt | None) -> StateAt:
        """A group holding ``state``: a delta on ``base`` when it can be, else a snapshot."""
        if base is not None and base.chain_length < SNAPSHOT_INTERVAL and all(k in state for k in base.state):
            delta = {k: v for k, v in state.items() if base.state.get(k) != v}
            if not delta:
                return base
            return await self._new_group(state, base, delta)
        return await self._new_group(state, None, state)

    async def with_state_event(self, base: StateAt | None, key: StateKey, event_id: str) -> StateAt:
        """``base`` plus one state event (the common case, without comparing whole maps)."""
        state = dict(base.state) if base is not None else {}
        state[key] = event_id
        if base is not None and base.chain_length < SNAPSHOT_INTERVAL:
            return await self._new_group(state, base, {key: event_id})
        return await self._new_group(state, None, state)

    async def _new_group(self, state: StateMap, base: StateAt | None, entries: StateMap) -> StateAt:
        (group_id,) = await self.groups.allocate_ids(1)
        if base is None:
            self.new_groups.append(NewStateGroup(group_id, None, 0, dict(entries)))
            return StateAt(state, group_id, 0)
        chain_length = base.chain_length + 1
        self.new_groups.append(NewStateGroup(group_id, base.group, chain_length, dict(entries)))
        return StateAt(state, group_id, chain_length)

    # -- extremities and current state ---------------------------------------------

    async def accept(self, item: Prepared, check_cited: bool) -> None:
        """Make an accepted event a forward extremity and bring the current state along.

        The event's prev_events stop being extremities, and so do those behind any
        hidden (rejected or soft-failed) event it cites. An event that a stored DAG
        event already cites (it arrived late) never becomes one (``check_cited``).
        """
        head = self.head
        assert head is not None and item.after is not None
        event = item.event
        retired = set(event.prev_event_ids) | await self._behind_hidden(event.prev_event_ids)
        extremities = {i: d for i, d in head.extremities.items() if i not in retired}
        if not (check_cited and await self.dag.cited_by_dag([event.event_id])):
            extremities[event.event_id] = event.depth
        if extremities.keys() == head.extremities.keys():
            return
        head.extremities = extremities
        changed: set[StateKey] | None = None
        if list(extremities) == [event.event_id]:
            current = item.after
            if item.before is head.current:  # a linear step: only this event's key moved
                changed = {(event.type, event.state_key)} if event.state_key is not None else set()
        else:
            states = [await self.state_after(i) for i in extremities]
            current = await self.resolve([s for s in states if s is not None])
        previous_group = head.current.group if head.current is not None else None
        await self.set_current(current, changed)
        if current.group != previous_group:
            item.current_group = current.group

    async def set_current(self, current: StateAt, changed_keys: set[StateKey] | None = None) -> None:
        """Replace the current state, keeping the memberships in step.

        ``changed_keys`` (when the caller knows them) spares comparing the whole maps.
        """
        head = self.head
        assert head is not None
        previous = head.state
        head.current = current
        if changed_keys is None or self.touched is None:
            self.touched = None
            changed_keys = {k for k, v in current.state.items() if previous.get(k) != v}
            changed_keys |= {k for k in previous if k not in current.state}
        else:
            self.touched |= changed_keys
        changed = {key[1]: current.state[key] for key in changed_keys
                   if key[0] == "m.room.member" and key in current.state}
        removed = [key[1] for key in changed_keys if key[0] == "m.room.member" and key not in current.state]
        if changed:
            events = await self.get_events(changed.values())
            for user_id, event_id in changed.items():
                member = events.get(event_id)
                head.memberships[user_id] = (member.membership if member else None) or "leave"
        for user_id in removed:
            head.memberships.pop(user_id, None)

    async def _behind_hidden(self, prev_ids: Iterable[str]) -> set[str]:
        """The prev_events of hidden events among ``prev_ids``, walking back through hidden ones."""
        behind: set[str] = set()
        frontier = list(prev_ids)
        seen: set[str] = set()
        while frontier and len(seen) < MAX_HIDDEN_WALK:
            event_id = frontier.pop()
            if event_id in seen:
                continue
            seen.add(event_id)
            item = self.known.get(event_id)
            if item is not None:
                hidden, prevs = item.hidden, item.event.prev_event_ids
            else:
                stored = (await self.stored([event_id])).get(event_id)
                if stored is None:
                    continue
                hidden, prevs = stored.rejected or stored.soft_failed, stored.event.prev_event_ids
            if hidden:
                behind.update(prevs)
                frontier.extend(prevs)
        return behind

    def choose_prev_events(self) -> list[str]:
        """What a new local event cites: the deepest forward extremities, at most 10."""
        assert self.head is not None
        ranked = sorted(self.head.extremities.items(), key=lambda item: (-item[1], item[0]))
        return [event_id for event_id, _ in ranked[:MAX_PREV_EVENTS]]
