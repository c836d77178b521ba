"""Local events: build a spec into a signed event on the room's forward extremities.

A local event goes through the same stages as a remote one, but a failure is the
client's error (a MatrixError raised to the caller) and nothing is stored.
"""

from __future__ import annotations

from homeserver.errors import MatrixError, bad_json, forbidden
from homeserver.events.auth import listed_auth_types_for_event
from homeserver.events.builder import ServerSigningKey, build_event
from homeserver.events.event import Event
from homeserver.events.power_levels import get_named_level, get_user_power_level
from homeserver.pipeline.checks import auth_state_ids, check_against_state, check_local_shape
from homeserver.pipeline.head import RoomHead, StateAt
from homeserver.pipeline.types import EventSpec, NewRoom, Outcome
from homeserver.pipeline.work import Prepared, RoomWork
from homeserver.server import Server
from storage.stores.state import StateKey

#: Depth is a signed 64-bit integer in the spec.
MAX_DEPTH = 2**63 - 1


class LocalEventBuilder:
    def __init__(self, hs: Server) -> None:
        self.clock = hs.clock
        self.key: ServerSigningKey = hs.signing_key
        self.max_group_size: int = hs.config.max_group_size

    async def add(self, work: RoomWork, spec: EventSpec, new_room: NewRoom | None) -> Prepared:
        """Build, check and accept one spec into ``work``; raises MatrixError on refusal."""
        if spec.prebuilt is not None and spec.prebuilt.type == "m.room.create" and not spec.prebuilt.prev_event_ids:
            return await self._add_create(work, spec, new_room)
        if spec.prebuilt is not None:
            return await self._add_prebuilt(work, spec, spec.prebuilt)
        head = work.head
        if head is None or head.current is None or not head.extremities:
            raise forbidden("Unknown room")
        prev_ids = work.choose_prev_events()
        before = await work.state_before(prev_ids)
        if before is None:
            raise forbidden("Unknown room")
        event = await self._build(work, head, spec, prev_ids, before)
        auth_map = await _auth_map(work, event, before)
        reason = check_against_state(event, auth_map)
        if reason is not None:
            raise forbidden(reason)
        if before is not head.current:
            # More than 10 extremities: the event must also pass against the current state.
            current_reason = check_against_state(event, await _auth_map(work, event, head.current))
            if current_reason is not None:
                raise forbidden(current_reason)
        if event.type == "m.room.redaction":
            await self._check_redaction(work, event, auth_map)
        self._check_room_size(head, event)
        item = Prepared(event, Outcome.ACCEPTED, before=before, spec=spec)
        item.after = await _after(work, event, before)
        work.add(item)
        await work.accept(item, check_cited=False)
        return item

    async def _add_prebuilt(self, work: RoomWork, spec: EventSpec, event: Event) -> Prepared:
        """An event ``build_local`` made earlier (and another server has signed since): it
        must still pass against the state before it and the current state."""
        head = work.head
        if head is None or head.current is None or event.room_id != work.room_id:
            raise forbidden("Unknown room")
        check_local_shape(event)
        if event.event_id in work.known or await work.stored([event.event_id]):
            raise MatrixError(400, "M_UNKNOWN", "The event was already sent")
        before = await work.state_before(event.prev_event_ids)
        if before is None:
            raise forbidden("The room changed under the event; try again")
        reason = check_against_state(event, await _auth_map(work, event, before))
        if reason is None and before is not head.current:
            reason = check_against_state(event, await _auth_map(work, event, head.current))
        if reason is not None:
            raise forbidden(reason)
        item = Prepared(event, Outcome.ACCEPTED, before=before, spec=spec)
        item.after = await _after(work, event, before)
        work.add(item)
        await work.accept(item, check_cited=False)
        return item

    async def _add_create(self, work: RoomWork, spec: EventSpec, new_room: NewRoom | None) -> Prepared:
        event = spec.prebuilt
        assert event is not None
        check_local_shape(event)
        reason = check_against_state(event, {})
        if reason is not None or event.state_key is None:
            raise forbidden(reason or "m.room.create must be a state event")
        if work.head is not None:
            raise MatrixError(400, "M_ROOM_IN_USE", "Room already exists")
        work.head = RoomHead(event.room_version, {}, None, {})
        work.new_room = new_room
        item = Prepared(event, Outcome.ACCEPTED, spec=spec)
        item.after = await work.with_state_event(None, (event.type, event.state_key), event.event_id)
        work.add(item)
        await work.accept(item, check_cited=False)
        return item

    async def _build(self, work: RoomWork, head: RoomHead, spec: EventSpec, prev_ids: list[str],
                     before: StateAt) -> Event:
        room_version = head.room_version
        provisional = Event(
            pdu={"type": spec.event_type, "sender": spec.sender, "content": spec.content,
                 "room_id": work.room_id,
                 **({"state_key": spec.state_key} if spec.state_key is not None else {})},
            event_id="$provisional", room_version=room_version,
        )
        listed = listed_auth_types_for_event(provisional)
        listed_ids = [before.state[k] for k in sorted(listed) if k in before.state]
        reference_hashes = None
        if room_version.event_id_carried_in_pdu:
            refs = await work.get_events([*prev_ids, *listed_ids])
            reference_hashes = {i: e.pdu.get("hashes", {}) for i, e in refs.items()}
        depth = min(max(head.extremities[i] for i in prev_ids) + 1, MAX_DEPTH)
        try:
            event = build_event(
                room_version=room_version, event_type=spec.event_type, sender=spec.sender,
                content=spec.content, room_id=work.room_id, prev_event_ids=prev_ids,
                auth_event_ids=listed_ids, depth=depth,
                origin_server_ts=int(self.clock.seconds() * 1000), key=self.key,
                state_key=spec.state_key, redacts=spec.redacts, reference_hashes=reference_hashes,
            )
        except (TypeError, ValueError) as exc:
            raise bad_json(f"Cannot build event: {exc}") from None
        check_local_shape(event)
        return event

    async def _check_redaction(self, work: RoomWork, event: Event, auth_map: dict[StateKey, Event]) -> None:
        """Redacting someone else's event needs the redact level (the auth rules leave it to us)."""
        target_id = event.redacts
        if target_id is None:
            raise bad_json("m.room.redaction needs the event to redact")
        target = (await work.get_events([target_id])).get(target_id)
        if target is None or target.room_id != event.room_id:
            raise MatrixError(404, "M_NOT_FOUND", "Event to redact not found in this room")
        if target.sender == event.sender:
            return
        if get_user_power_level(event.sender, auth_map) < get_named_level("redact", auth_map):
            raise forbidden("You need the redact power level to redact other users' events")

    def _check_room_size(self, head: RoomHead, event: Event) -> None:
        if event.type != "m.room.member" or event.state_key is None or event.membership != "join":
            return
        if head.memberships.get(event.state_key) != "join" and head.joined_count >= self.max_group_size:
            raise MatrixError(
                403, "M_FORBIDDEN",
                f"This room is full: it already has {self.max_group_size} joined members,"
                " the most this server allows",
            )


async def _auth_map(work: RoomWork, event: Event, state: StateAt) -> dict[StateKey, Event]:
    ids = auth_state_ids(event, state.state)
    loaded = await work.get_events(ids.values())
    return {key: loaded[i] for key, i in ids.items() if i in loaded}


async def _after(work: RoomWork, event: Event, before: StateAt) -> StateAt:
    if event.state_key is None:
        return before
    return await work.with_state_event(before, (event.type, event.state_key), event.event_id)

