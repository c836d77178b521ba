"""Reading and writing a user's own account data (global and per room)."""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError, bad_json, forbidden, invalid_param, not_found
from homeserver.handlers.accounts.auth import Requester
from homeserver.handlers.rooms.room_state import check_room_id
from homeserver.handlers.validation import check_storable_text
from homeserver.server import Server
from storage.stores.account_data import AccountDataStore

MAX_TYPE_LENGTH = 255

# Types other APIs own: clients must change them there (as Synapse refuses them here).
GLOBAL_TYPES_ELSEWHERE = {"m.push_rules": "Cannot set m.push_rules through this API"}
ROOM_TYPES_ELSEWHERE = {"m.fully_read": "Cannot set m.fully_read through this API; use /read_markers"}


class AccountDataHandler:
    def __init__(self, hs: Server) -> None:
        self.store = hs.get(AccountDataStore)

    def _check(self, requester: Requester, user_id: str, room_id: str | None, data_type: str) -> None:
        if user_id != requester.user_id:
            raise forbidden("Cannot access account data for other users")
        if room_id is not None:
            check_room_id(room_id)
        if not data_type or len(data_type) > MAX_TYPE_LENGTH:
            raise invalid_param(f"The type must be 1 to {MAX_TYPE_LENGTH} characters")
        check_storable_text("type", data_type, invalid_param("The type may not contain NUL characters"))

    async def put(self, requester: Requester, user_id: str, room_id: str | None, data_type: str,
                  content: dict[str, Any]) -> None:
        self._check(requester, user_id, room_id, data_type)
        refused = (ROOM_TYPES_ELSEWHERE if room_id is not None else GLOBAL_TYPES_ELSEWHERE).get(data_type)
        if refused is not None:
            if room_id is not None:
                raise MatrixError(405, "M_BAD_JSON", refused)
            raise bad_json(refused)
        await self.store.put_account_data(user_id, room_id, data_type, content)

    async def get(self, requester: Requester, user_id: str, room_id: str | None, data_type: str) -> Any:
        self._check(requester, user_id, room_id, data_type)
        content = await self.store.get_account_data(user_id, room_id, data_type)
        if content is None:
            raise not_found("Account data not found")
        return content
