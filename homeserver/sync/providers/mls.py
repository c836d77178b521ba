"""The ``org.vignette.mls`` section (stream "mls"): accepted MLS commits and pending removals per room."""

from __future__ import annotations

from typing import Any

from homeserver.handlers.mls.common import SYNC_SECTION
from homeserver.handlers.mls.delivery import MlsSyncView
from homeserver.server import Server
from homeserver.sync.provider import SyncRequest


class MlsProvider:
    stream = "mls"

    def __init__(self, hs: Server) -> None:
        self.view = hs.get(MlsSyncView)

    async def prepare(self) -> None:
        await self.view.prepare()

    def current_position(self) -> int:
        return self.view.current_position()

    def still(self, since: int, upto: int, context: dict[str, Any]) -> bool:
        return upto <= since  # MlsSyncView.section: no room changed

    async def build(self, request: SyncRequest, since: int | None, upto: int,
                    response: dict[str, Any], context: dict[str, Any]) -> None:
        section = await self.view.section(request.user_id, request.device_id, context["joined_rooms"], since, upto)
        if section:
            response[SYNC_SECTION] = section
