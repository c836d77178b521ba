"""Remote events: PDUs handed in by the federation receiver after its format,
signature and hash checks, and outliers (events stored without their state).

Every remote event ends with an `Outcome`; nothing here raises for a bad event.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from homeserver.events.auth import (
    auth_types_for_event,
    redaction_is_privileged,
    should_apply_redaction,
)
from homeserver.events.event import Event
from homeserver.pipeline.checks import (
    auth_state_ids,
    check_against_auth_events,
    check_against_state,
)
from homeserver.pipeline.head import RoomHead, StateAt
from homeserver.pipeline.types import EventResult, NewRoom, Outcome, RemoteEvent
from homeserver.pipeline.work import Prepared, RoomWork
from storage.stores.rooms import RoomRow
from storage.stores.state import StateKey, StateMap


def order_by_prev_events(events: Sequence[RemoteEvent]) -> list[RemoteEvent]:
    """Parents before children within the batch (stable otherwise), as they must be processed.

    A depth-first walk with its own stack: a join to a big room brings an auth chain thousands of
    events deep, past Python's recursion limit."""
    by_id = {e.event.event_id: e for e in events}
    ordered: list[RemoteEvent] = []
    placed: set[str] = set()
    for root in events:
        if root.event.event_id in placed:
            continue
        on_path = {root.event.event_id}
        stack: list[tuple[RemoteEvent, Iterator[str]]] = [(root, _parent_ids(root))]
        while stack:
            item, parents = stack[-1]
            parent = next((by_id[ref] for ref in parents if ref in by_id), None)
            if parent is None:
                stack.pop()
                placed.add(item.event.event_id)
                ordered.append(item)
                continue
            parent_id = parent.event.event_id
            if parent_id not in placed and parent_id not in on_path:
                on_path.add(parent_id)
                stack.append((parent, _parent_ids(parent)))
    return ordered


def _parent_ids(item: RemoteEvent) -> Iterator[str]:
    return iter((*item.event.prev_event_ids, *item.event.auth_event_ids))


def _create_event_id(event: Event) -> str | None:
    """The create event a v12 event implies without listing it."""
    if event.room_version.room_id_is_create_event_hash and event.type != "m.room.create":
        return "$" + event.room_id[1:]
    return None


def _new_room_row(room_id: str, create: Event) -> NewRoom:
    return NewRoom(RoomRow(room_id, create.room_version.identifier, create.sender, False))


async def _stage_one(work: RoomWork, event: Event) -> EventResult | str | None:
    """Auth against the event's own auth_events: a MISSING result, a rejection reason, or None."""
    auth_ids = list(event.auth_event_ids)
    implied = _create_event_id(event)
    if implied is not None:
        auth_ids.append(implied)
    auth_events = await work.get_events(auth_ids)
    missing = tuple(i for i in auth_ids if i not in auth_events)
    if missing:
        return EventResult(event.event_id, Outcome.MISSING, "auth events unknown", missing)
    rejected = await work.is_rejected(auth_ids)
    if rejected:
        return f"auth event {rejected[0]} was rejected"
    if event.type == "m.room.create":
        return check_against_state(event, {})
    listed = [auth_events[i] for i in event.auth_event_ids]
    return check_against_auth_events(event, listed, auth_events.get(implied) if implied else None)


async def _auth_map(work: RoomWork, event: Event, state: StateMap) -> dict[StateKey, Event]:
    ids = auth_state_ids(event, state)
    if work.partial:
        ids = await _with_cited_members(work, event, ids)
    loaded = await work.get_events(ids.values())
    return {key: loaded[i] for key, i in ids.items() if i in loaded}


async def _with_cited_members(work: RoomWork, event: Event, ids: dict[StateKey, str]) -> dict[StateKey, str]:
    """In a partial-state room the state lacks most members: for a member key the auth rules
    consult and the state does not hold, the member event the event cites stands in (it
    passed stage one). Synapse does the same until the room's state is complete."""
    wanted = {key for key in auth_types_for_event(event) if key[0] == "m.room.member" and key not in ids}
    if not wanted:
        return ids
    cited = await work.get_events(event.auth_event_ids)
    filled = dict(ids)
    for event_id, auth_event in cited.items():
        key = (auth_event.type, auth_event.state_key or "")
        if key in wanted:
            filled[key] = event_id
    return filled


async def add_remote(work: RoomWork, remote: RemoteEvent, origin: str) -> EventResult:
    """Run one remote event through the stages and add it to ``work`` (unless MISSING/REFUSED)."""
    event = remote.event
    event_id = event.event_id
    if event.room_id != work.room_id:
        return EventResult(event_id, Outcome.REFUSED, "event is for another room")
    if event_id in work.known:
        return EventResult(event_id, Outcome.DUPLICATE)
    stored = (await work.stored([event_id])).get(event_id)
    if stored is not None and not stored.outlier:
        return EventResult(event_id, Outcome.DUPLICATE)
    deoutlier = stored is not None

    # Where the event stands: the state before it, from its prev_events or as given.
    missing_prevs: tuple[str, ...] = ()
    before: StateAt | None
    if event.type == "m.room.create" and not event.prev_event_ids:
        ours = work.head is not None and work.head.current is not None \
            and work.head.current.state.get(("m.room.create", "")) == event_id
        if work.head is not None and work.head.current is not None and not (remote.backfilled and ours):
            return EventResult(event_id, Outcome.REFUSED, "the room already has a create event")
        before = None
    else:
        if not event.prev_event_ids and remote.state_before is None:
            return EventResult(event_id, Outcome.REFUSED, "only m.room.create may have no prev_events")
        if work.head is None and remote.state_before is None:
            return EventResult(event_id, Outcome.MISSING, "unknown room", tuple(event.prev_event_ids))
        unknown = [i for i in event.prev_event_ids if await work.state_after(i) is None]
        if unknown and remote.state_before is None:
            return EventResult(event_id, Outcome.MISSING, "prev events unknown", tuple(unknown))
        if remote.state_before is not None and (unknown or not event.prev_event_ids):
            result = await _given_state(work, event, remote.state_before)
            if isinstance(result, EventResult):
                return result
            before = result
            # What we lack before it, or hold only as an outlier (a state event a join brought),
            # is where backfill starts (docs/federation-rooms.md, "Backfill").
            missing_prevs = tuple(unknown)
        else:
            before = await work.state_before(event.prev_event_ids)
            assert before is not None

    stage_one = await _stage_one(work, event)
    if isinstance(stage_one, EventResult):
        return stage_one
    if before is None:  # the create event
        if work.head is None:
            work.head = RoomHead(event.room_version, {}, None, {})
            work.new_room = _new_room_row(work.room_id, event)
        outcome = Outcome.REJECTED if stage_one else Outcome.ACCEPTED
        item = Prepared(event, outcome, stage_one, origin=origin, deoutlier=deoutlier)
        empty = await work.state_group_for({}, None)
        item.before = empty
        item.after = empty if stage_one else await work.with_state_event(
            None, (event.type, event.state_key or ""), event_id)
        return await _finish(work, item)

    reason = stage_one
    if reason is None:
        reason = check_against_state(event, await _auth_map(work, event, before.state))
    outcome = Outcome.REJECTED if reason is not None else Outcome.ACCEPTED
    head = work.head
    assert head is not None
    if outcome is Outcome.ACCEPTED and head.current is not None and before is not head.current \
            and not remote.rejoin and not remote.backfilled:
        soft = check_against_state(event, await _auth_map(work, event, head.current.state))
        if soft is not None:
            outcome, reason = Outcome.SOFT_FAILED, soft
    if remote.backfilled:  # what we lack behind it is where backfill goes on next time
        missing_prevs = tuple([i for i in event.prev_event_ids if await work.state_after(i) is None])
    item = Prepared(event, outcome, reason, before=before, origin=origin, deoutlier=deoutlier,
                    missing_prevs=missing_prevs, backfilled=remote.backfilled)
    if outcome is Outcome.ACCEPTED and event.type == "m.room.redaction" and event.redacts is not None:
        await _decide_redaction(work, item, before.state)
    if outcome is Outcome.REJECTED or event.state_key is None:
        item.after = before
    else:
        item.after = await work.with_state_event(before, (event.type, event.state_key), event_id)
    result = await _finish(work, item)
    if remote.rejoin and outcome is Outcome.ACCEPTED and item.after is not None:
        head.extremities = {event_id: event.depth}
        await work.set_current(item.after)
        item.current_group = item.after.group
    return result


async def _decide_redaction(work: RoomWork, item: Prepared, state: StateMap) -> None:
    """Whether an accepted remote redaction redacts its target now; one whose target we do not
    hold yet waits for it (``pending_redaction``: decided when the target is stored, as Synapse does)."""
    redaction = item.event
    assert redaction.redacts is not None
    auth_map = await _auth_map(work, redaction, state)
    target = (await work.get_events([redaction.redacts])).get(redaction.redacts)
    if target is None:
        item.pending_redaction = redaction_is_privileged(redaction, auth_map)
    else:
        item.applies_redaction = should_apply_redaction(redaction, target, auth_map)


async def _finish(work: RoomWork, item: Prepared) -> EventResult:
    work.add(item)
    if item.outcome is Outcome.ACCEPTED and not item.backfilled:
        await work.accept(item, check_cited=True)
        if work.head is not None and work.head.current is None:
            assert item.after is not None
            await work.set_current(item.after)
    return EventResult(item.event.event_id, item.outcome, item.reason)


async def _given_state(work: RoomWork, event: Event, state: StateMap) -> StateAt | EventResult:
    """The state before an event as the receiver fetched it: every event in it must be held."""
    held = await work.get_events(state.values())
    missing = tuple(i for i in state.values() if i not in held)
    if missing:
        return EventResult(event.event_id, Outcome.MISSING, "state events unknown", missing)
    if work.head is None:
        create = held.get(state.get(("m.room.create", ""), ""))
        if create is None:
            return EventResult(event.event_id, Outcome.REFUSED, "the given state has no m.room.create")
        work.head = RoomHead(create.room_version, {}, None, {})
        work.new_room = _new_room_row(work.room_id, create)
    return await work.state_group_for(dict(state), None)


async def add_outlier(work: RoomWork, event: Event, origin: str) -> EventResult:
    """Store an event without its state, after the auth check against its own auth_events."""
    event_id = event.event_id
    if event.room_id != work.room_id:
        return EventResult(event_id, Outcome.REFUSED, "event is for another room")
    if event_id in work.known or await work.stored([event_id]):
        return EventResult(event_id, Outcome.DUPLICATE)
    if work.head is None:
        create = event if event.type == "m.room.create" else None
        if create is None:
            create_id = _create_event_id(event) or next(
                (i for i in event.auth_event_ids if i.startswith("$")), None)
            found = await work.get_events([create_id]) if create_id else {}
            create = next((e for e in found.values() if e.type == "m.room.create"), None)
        if create is None:
            return EventResult(event_id, Outcome.MISSING, "the room's create event is unknown")
        work.head = RoomHead(create.room_version, {}, None, {})
        work.new_room = _new_room_row(work.room_id, create)
    stage_one = await _stage_one(work, event)
    if isinstance(stage_one, EventResult):
        return stage_one
    outcome = Outcome.REJECTED if stage_one else Outcome.OUTLIER
    item = Prepared(event, outcome, stage_one, origin=origin, outlier=True)
    work.add(item)
    return EventResult(event_id, outcome, stage_one)
