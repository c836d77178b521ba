"""Room tags (favourites, low priority...): the ``m.tag`` room account data, edited one tag at a time.

Tags live in the user's room account data as ``{"tags": {name: {"order": ...}}}``, so sync
delivers them like any other room account data. Each PUT or DELETE is a read-modify-write
of that one object, so changes for one user are serialised (two tags added at once must
both survive).
"""

from __future__ import annotations

from typing import Any

from homeserver.async_utils import KeyedLocks
from homeserver.errors import bad_json, forbidden, invalid_param
from homeserver.handlers.accounts.auth import Requester
from homeserver.handlers.rooms.room_state import check_room_id
from homeserver.server import Server
from storage.stores.account_data import AccountDataStore

TAG_TYPE = "m.tag"
MAX_TAG_LENGTH = 255


class RoomTagsHandler:
    def __init__(self, hs: Server) -> None:
        self.store = hs.get(AccountDataStore)
        self._locks: KeyedLocks[str] = KeyedLocks()

    def _check(self, requester: Requester, user_id: str, room_id: str) -> None:
        if user_id != requester.user_id:
            raise forbidden("Cannot access tags for other users")
        check_room_id(room_id)

    async def get_tags(self, requester: Requester, user_id: str, room_id: str) -> dict[str, Any]:
        self._check(requester, user_id, room_id)
        return {"tags": await self._tags(user_id, room_id)}

    async def _tags(self, user_id: str, room_id: str) -> dict[str, Any]:
        content = await self.store.get_account_data(user_id, room_id, TAG_TYPE)
        tags = content.get("tags") if isinstance(content, dict) else None
        return dict(tags) if isinstance(tags, dict) else {}

    async def add_tag(self, requester: Requester, user_id: str, room_id: str, tag: str,
                      content: dict[str, Any]) -> None:
        self._check(requester, user_id, room_id)
        check_tag(tag)
        order = content.get("order")
        if order is not None and (isinstance(order, bool) or not isinstance(order, (int, float))):
            raise bad_json("order must be a number")
        await self._update(user_id, room_id, lambda tags: tags.__setitem__(tag, content))

    async def remove_tag(self, requester: Requester, user_id: str, room_id: str, tag: str) -> None:
        self._check(requester, user_id, room_id)
        check_tag(tag)
        await self._update(user_id, room_id, lambda tags: tags.pop(tag, None))

    async def _update(self, user_id: str, room_id: str, change: Any) -> None:
        async with self._locks.hold(user_id):
            tags = await self._tags(user_id, room_id)
            before = dict(tags)
            change(tags)
            if tags != before or not before:
                await self.store.put_account_data(user_id, room_id, TAG_TYPE, {"tags": tags})


def check_tag(tag: str) -> None:
    if not tag or len(tag) > MAX_TAG_LENGTH or "\x00" in tag:
        raise invalid_param(f"A tag must be 1 to {MAX_TAG_LENGTH} characters, without NUL")
