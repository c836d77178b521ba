"""PDUs for a room none of our users is joined to, that still concern one of ours: the
room's server refusing a knock, or rescinding an invite, or banning the user. We hold no
state to check them against, so they are kept as out-of-band memberships (like the invite
or knock they end) when they are validly signed by the calling server, come from a user of
that server, cite the pending invite or knock of a local user among their auth events, and,
for an invite, come from the inviter (we cannot know who else may rescind it; Synapse
applies the same rule, and keeps no knock refusals at all)."""

from __future__ import annotations

from typing import Any

from federation.receiver.pdu_checks import CheckedPdu, FailedPdu, PduChecker
from federation.server_visibility import domain_of
from homeserver.events.room_versions import RoomVersion
from homeserver.pipeline import EventPipeline, Outcome
from homeserver.server import Server
from storage.stores.events import EventStore
from storage.stores.room_members import RoomMemberStore

NOT_IN_ROOM = {"error": "This server is not in the room"}


class OutOfBandReceiver:
    def __init__(self, hs: Server) -> None:
        self.server_name: str = hs.server_name
        self.checker = hs.get(PduChecker)
        self.pipeline = hs.get(EventPipeline)
        self.members = hs.get(RoomMemberStore)
        self.events = hs.get(EventStore)

    async def receive(self, origin: str, room_id: str, room_version: RoomVersion,
                      raws: list[Any]) -> dict[str, dict[str, Any]]:
        results: dict[str, dict[str, Any]] = {}
        for checked in await self.checker.check(raws, room_version, room_id):
            if isinstance(checked, FailedPdu):
                if checked.event_id is not None:
                    results[checked.event_id] = {"error": checked.reason}
                continue
            assert isinstance(checked, CheckedPdu)
            event = checked.event
            results[event.event_id] = NOT_IN_ROOM
            target = event.state_key
            if (event.type != "m.room.member" or target is None or event.membership not in ("leave", "ban")
                    or domain_of(target) != self.server_name or domain_of(event.sender) != origin):
                continue
            current = await self.members.get_membership(room_id, target)
            if current is None or current.membership not in ("invite", "knock") \
                    or current.event_id not in event.auth_event_ids:
                continue
            if current.membership == "invite" and not await self._sent_by(current.event_id, event.sender):
                continue  # only the inviter can be known to may take an invite back
            result = await self.pipeline.store_out_of_band_membership(event, origin)
            if result.outcome in (Outcome.OUTLIER, Outcome.DUPLICATE):
                results[event.event_id] = {}
        return results

    async def _sent_by(self, event_id: str, sender: str) -> bool:
        stored = await self.events.get_event(event_id)
        return stored is not None and stored.event.sender == sender
