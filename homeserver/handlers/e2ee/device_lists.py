"""Device-list changes: record them, wake the users who care, and answer "who changed?".

A user cares about another user's devices while they share a room. Besides
explicit changes (new device keys, deleted devices, new cross-signing keys or
signatures), starting to share a room makes a user "changed" (the client must
fetch their keys) and ceasing to share the last room makes them "left".
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from homeserver.handlers.accounts.devices import DeviceHandler
from homeserver.server import Server
from storage.room_stream_cache import RoomStreamCache
from storage.stores.device_lists import DeviceListsStore
from storage.stores.room_members import RoomMemberStore
from storage.streams import Streams

DEVICE_LISTS_STREAM = "device_lists"


@attrs.frozen
class DeviceListDelta:
    changed: frozenset[str]
    left: frozenset[str]


class DeviceListsHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.store = hs.get(DeviceListsStore)
        self.members = hs.get(RoomMemberStore)
        self.recent = hs.get(RoomStreamCache)
        self.streams: Streams = hs.get(Streams)
        devices = hs.get(DeviceHandler)
        devices.on_devices_deleted.append(self.on_devices_deleted)
        devices.on_devices_renamed.append(self.on_device_renamed)

    async def users_sharing_rooms(self, user_id: str) -> set[str]:
        """Everyone joined to a room the user is joined to (the user included)."""
        shared = {user_id}
        for room_id in await self.members.get_rooms_for_user(user_id):
            shared |= await self.members.get_users_in_room(room_id)
        return shared

    async def changed(self, user_id: str, device_ids: Sequence[str | None] = (None,)) -> None:
        """Record that the user's devices (these; None: the cross-signing keys) changed, one
        stream id each (other servers get one update per device), and wake whoever cares."""
        targets = list(dict.fromkeys(device_ids)) or [None]
        writer = await self.store.stream_writer()
        async with writer.allocate(len(targets)) as ids:
            await self.store.add_device_changes(user_id, list(zip(ids, targets, strict=True)))
        writer.announce(ids[-1], users=await self.users_sharing_rooms(user_id))

    async def on_devices_deleted(self, user_id: str, device_ids: list[str]) -> None:
        """A deleted device takes its keys, one-time keys, signatures and inbox with it."""
        if not device_ids:
            return
        writer = await self.store.stream_writer()
        async with writer.allocate(len(device_ids)) as ids:
            await self.store.remove_devices_e2e_state(user_id, device_ids, list(ids))
        writer.announce(ids[-1], users=await self.users_sharing_rooms(user_id))

    async def on_device_renamed(self, user_id: str, device_ids: list[str]) -> None:
        """A new name is news only to servers allowed to see it."""
        if self.hs.config.allow_device_name_lookup_over_federation:
            await self.changed(user_id, device_ids)

    async def delta(self, user_id: str, since: int, upto: int, events_since: int | None,
                    events_upto: int | None) -> DeviceListDelta:
        """Who the user must re-query (changed) or may forget (left) between two tokens.

        ``since``/``upto`` are device_lists positions, ``events_*`` the room event
        stream positions of the same tokens: membership changes in that range in
        the user's rooms (theirs or others') are the join/leave transitions.
        """
        events_moved = events_since is not None and events_upto is not None and events_upto > events_since
        if upto <= since and not events_moved:
            return DeviceListDelta(frozenset(), frozenset())  # the common idle wake-up: no queries
        left: set[str] = set()
        moved: set[tuple[str, str]] = set()
        if events_moved:
            assert events_since is not None and events_upto is not None
            my_rooms = set(await self.members.get_rooms_with_membership(user_id))
            if any(self.recent.members_changed_since(room, events_since) for room in my_rooms):
                moved = await self.store.get_membership_movers(events_since, events_upto)
        if upto <= since and not moved:
            return DeviceListDelta(frozenset(), frozenset())  # messages only: no membership moved
        shared_now = await self.users_sharing_rooms(user_id)
        changed = (await self.store.get_changed_users(since, upto)) & shared_now
        if moved:
            candidates: set[str] = set()
            for room_id, mover in moved:
                if room_id not in my_rooms:
                    continue
                if mover == user_id:
                    # We joined or left: everyone in that room is a transition.
                    candidates |= await self.members.get_users_in_room(room_id)
                else:
                    candidates.add(mover)
            candidates.discard(user_id)
            changed |= candidates & shared_now
            left = candidates - shared_now
        return DeviceListDelta(frozenset(changed), frozenset(left))
