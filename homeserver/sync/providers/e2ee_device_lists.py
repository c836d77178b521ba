"""device_lists.changed / device_lists.left (stream "device_lists").

Only for incremental syncs: after an initial sync the client queries everyone's
keys anyway. Join and leave transitions come from the room event stream range
of the same sync, so the "events" positions of both tokens are read too.
"""

from __future__ import annotations

from typing import Any

from homeserver.handlers.e2ee.device_lists import DEVICE_LISTS_STREAM, DeviceListsHandler
from homeserver.server import Server
from homeserver.sync.provider import StreamToken, SyncRequest

EVENTS_STREAM = "events"


class E2eeDeviceListsProvider:
    stream = DEVICE_LISTS_STREAM

    def __init__(self, hs: Server) -> None:
        self.device_lists = hs.get(DeviceListsHandler)

    async def prepare(self) -> None:
        await self.device_lists.store.stream_writer()

    def current_position(self) -> int:
        return self.device_lists.streams.current_position(DEVICE_LISTS_STREAM)

    async def build(self, request: SyncRequest, since: int | None, upto: int,
                    response: dict[str, Any], context: dict[str, Any]) -> None:
        if since is None or request.since is None:
            return
        events_upto = context.get("events_upto")  # the rooms provider's upper bound, as next_batch's
        if events_upto is None:
            events_upto = StreamToken.parse(response["next_batch"]).get(EVENTS_STREAM)
        delta = await self.device_lists.delta(request.user_id, since, upto,
                                              request.since.get(EVENTS_STREAM), events_upto)
        if delta.changed or delta.left:
            response["device_lists"] = {"changed": sorted(delta.changed), "left": sorted(delta.left)}
