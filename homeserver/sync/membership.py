"""The room-membership questions sync, typing, receipts and presence ask.

One place that talks to the rooms area's RoomMemberStore, so the rest of the
sync code does not depend on how rooms stores membership.
"""

from __future__ import annotations

from typing import Any


def _members(hs: Any) -> Any:
    from storage.stores.room_members import RoomMemberStore

    return hs.get(RoomMemberStore)


async def joined_rooms(hs: Any, user_id: str) -> set[str]:
    return set(await _members(hs).get_rooms_for_user(user_id))


async def joined_users(hs: Any, room_id: str) -> set[str]:
    return set(await _members(hs).get_users_in_room(room_id))


async def is_joined(hs: Any, user_id: str, room_id: str) -> bool:
    return user_id in await joined_users(hs, room_id)


async def users_sharing_a_room(hs: Any, user_id: str) -> set[str]:
    """Everyone joined to any room the user is joined to (the user included)."""
    users = {user_id}
    for room_id in await joined_rooms(hs, user_id):
        users |= await joined_users(hs, room_id)
    return users
