"""Out-of-band memberships: a local user's invite, knock or leave in a room none of our
users is in (a remote invite, our knock, our rejection of an invite).

We hold no state for such a room, so the event cannot enter the DAG. It is stored as an
outlier that still takes a place in the live stream, and it sets the user's row in
``room_members_current`` (and ``room_membership_changes``), so sync shows the invite,
the knock or the leave like any other membership change. The room gets its ``rooms``
row (version and creator) from the first one. When one of our users later joins, the
join brings the room's real state and the DAG takes over.
"""

from __future__ import annotations

from homeserver.events.event import Event
from homeserver.events.identifiers import server_name_of
from homeserver.pipeline.head import RoomHead
from homeserver.pipeline.types import EventResult, NewRoom, Outcome
from homeserver.pipeline.work import Prepared, RoomWork
from storage.stores.rooms import RoomRow

MEMBERSHIPS = ("invite", "knock", "leave", "ban")


async def add_out_of_band(work: RoomWork, event: Event, origin: str | None, server_name: str) -> EventResult:
    """Add one out-of-band membership event to ``work`` (REFUSED when it cannot be one)."""
    event_id = event.event_id
    if event.room_id != work.room_id:
        return EventResult(event_id, Outcome.REFUSED, "event is for another room")
    if (event.type != "m.room.member" or event.state_key is None or event.membership not in MEMBERSHIPS
            or server_name_of(event.state_key) != server_name):
        return EventResult(event_id, Outcome.REFUSED, "not a membership of one of our users")
    if event_id in work.known or await work.stored([event_id]):
        return EventResult(event_id, Outcome.DUPLICATE)
    head = work.head
    if head is not None and any(m == "join" and server_name_of(u) == server_name
                                for u, m in head.memberships.items()):
        return EventResult(event_id, Outcome.REFUSED, "we are in the room: the event comes through its DAG")
    if head is None:
        work.head = RoomHead(event.room_version, {}, None, {})
        work.new_room = NewRoom(RoomRow(work.room_id, event.room_version.identifier, event.sender, False))
    elif head.room_version.identifier != event.room_version.identifier:
        return EventResult(event_id, Outcome.REFUSED, "the event is of another room version than the room")
    assert work.head is not None
    work.head.memberships[event.state_key] = event.membership or "leave"
    work.add(Prepared(event, Outcome.OUTLIER, origin=origin, outlier=True, out_of_band=True))
    return EventResult(event_id, Outcome.OUTLIER)
