"""The room-membership questions other areas ask (sync, typing, receipts, presence)."""

from __future__ import annotations

from homeserver.server import Server
from storage.stores.room_members import RoomMemberStore


async def joined_rooms(hs: Server, user_id: str) -> set[str]:
    return set(await hs.get(RoomMemberStore).get_rooms_for_user(user_id))


async def joined_users(hs: Server, room_id: str) -> set[str]:
    return set(await hs.get(RoomMemberStore).get_users_in_room(room_id))


async def is_joined(hs: Server, user_id: str, room_id: str) -> bool:
    return user_id in await joined_users(hs, room_id)


async def users_sharing_a_room(hs: Server, user_id: str) -> set[str]:
    """Everyone joined to any room the user is joined to (the user included)."""
    users = {user_id}
    for room_id in await joined_rooms(hs, user_id):
        users |= await joined_users(hs, room_id)
    return users
