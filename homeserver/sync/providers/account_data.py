"""account_data (global) and rooms.join.<room>.account_data (stream "account_data")."""

from __future__ import annotations

from typing import Any

from homeserver.handlers.push.rules import PUSH_RULES_TYPE
from homeserver.handlers.push.ruleset import Ruleset
from homeserver.server import Server
from homeserver.sync.provider import SyncRequest
from homeserver.sync.providers.common import joined_room_entry, request_filter
from storage.stores.account_data import AccountDataStore


def _events(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"type": data_type, "content": content} for data_type, content in sorted(data.items())]


class AccountDataProvider:
    stream = "account_data"

    def __init__(self, hs: Server) -> None:
        self.store = hs.get(AccountDataStore)
        self._position = 0

    async def prepare(self) -> None:
        self._position = await self.store.get_current_position()

    def current_position(self) -> int:
        return self._position

    def still(self, since: int, upto: int, context: dict[str, Any]) -> bool:
        return upto <= since  # get_account_data_changes has nothing then

    async def build(self, request: SyncRequest, since: int | None, upto: int,
                    response: dict[str, Any], context: dict[str, Any]) -> None:
        sync_filter = request_filter(request, context)
        if since is None:
            data = await self.store.get_all_account_data(request.user_id)
            if PUSH_RULES_TYPE not in data.global_data:
                # As Synapse: an initial sync always carries the rules, defaults included.
                data.global_data[PUSH_RULES_TYPE] = Ruleset.empty(request.user_id).to_account_data()
        else:
            data = await self.store.get_account_data_changes(request.user_id, since, upto)
        global_events = sync_filter.account_data.filter(_events(data.global_data))
        if global_events and not sync_filter.account_data.blocks_everything:
            response.setdefault("account_data", {"events": []})["events"].extend(global_events)
        room_filter = sync_filter.room_account_data
        if room_filter.blocks_everything:
            return
        for room_id, room_data in sorted(data.rooms.items()):
            if room_id not in context["joined_rooms"] or not sync_filter.allows_room(room_id):
                continue
            if not room_filter.allows_room(room_id):
                continue
            events = room_filter.filter(_events(room_data))
            if events:
                joined_room_entry(response, room_id)["account_data"]["events"].extend(events)
