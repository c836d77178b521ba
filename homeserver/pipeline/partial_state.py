"""Completing a partial-state room (MSC3706) inside the room's pipeline worker.

The federation resync hands in the state it fetched from the resident servers; the room's
worker writes it with ``fill_partial_state_txn`` between two batches, so no batch computes
state from a snapshot that is being filled. The room's head and the group cache are then
stale (groups were extended in place) and dropped; the write is announced on the "events"
stream so the local members' syncs see the room again, now with its whole state.
"""

from __future__ import annotations

from homeserver.events.identifiers import server_name_of
from homeserver.pipeline.head import RoomHeads
from homeserver.server import Server
from storage.stores.events import EventStore
from storage.stores.partial_state import FilledMember, PartialStateStore, fill_partial_state_txn
from storage.stores.room_members import RoomMemberStore
from storage.stores.state import StateGroupStore, StateMap


async def fill_partial_state(hs: Server, heads: RoomHeads, room_id: str, join_event_id: str,
                             fill: StateMap) -> None:
    events = hs.get(EventStore)
    members = hs.get(RoomMemberStore)
    member_ids = {key[1]: event_id for key, event_id in fill.items() if key[0] == "m.room.member"}
    loaded = await events.get_events(member_ids.values())
    rows = [FilledMember(user_id, stored.event.membership or "leave", stored.event_id, stored.stream_ordering)
            for user_id, event_id in member_ids.items()
            if (stored := loaded.get(event_id)) is not None and not stored.rejected]
    writer = await events.stream_writer()
    async with writer.allocate(1) as ids:
        await hs.db.run_interaction("fill_partial_state", fill_partial_state_txn, room_id, join_event_id,
                                    fill, rows, ids[0])
        heads.forget(room_id)
        hs.get(StateGroupStore).forget_all()
        members.invalidate(room_id, member_ids)
        hs.get(PartialStateStore).completed_in_memory(room_id, ids[0])
    local = {user for user in await members.get_users_in_room(room_id) if server_name_of(user) == hs.server_name}
    writer.announce(ids[-1], users=local, rooms={room_id})
