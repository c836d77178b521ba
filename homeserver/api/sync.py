"""GET /sync: the long-poll transport over the sync builder."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.web.server import Request

from homeserver.errors import invalid_param
from homeserver.handlers.accounts.auth import Auth
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import query_bool, query_filter, query_int, query_str
from homeserver.http.resource import RawResponse, encode_json_dropping_unencodable
from homeserver.http.router import Router, client_paths
from homeserver.server import Server
from homeserver.stream_token import parse_since
from homeserver.sync.encoded import encode_spliced
from homeserver.sync.filters import FilterHandler
from homeserver.sync.handler import SyncHandler
from homeserver.sync.provider import SyncRequest

RESOURCES = ("client",)

PRESENCE_VALUES = ("online", "offline", "unavailable")


def register_routes(router: Router, hs: Server) -> None:
    async def sync(request: Request) -> tuple[int, Any]:
        requester = await get_user_by_req(request, hs.get(Auth))
        since = parse_since(query_str(request, "since"))
        timeout = query_int(request, "timeout", default=0, minimum=0) or 0
        full_state = query_bool(request, "full_state")
        set_presence = query_str(request, "set_presence")
        if set_presence is not None and set_presence not in PRESENCE_VALUES:
            raise invalid_param("set_presence must be online, offline or unavailable")
        sync_filter = await hs.get(FilterHandler).resolve(requester.user_id, query_filter(request))
        sync_request = SyncRequest(
            user_id=requester.user_id, device_id=requester.device_id, filter=sync_filter,
            full_state=full_state, since=since, access_token_id=requester.access_token_id,
        )
        work = Deferred.fromCoroutine(hs.get(SyncHandler).sync(sync_request, timeout, set_presence,
                                                                  encoded=True))
        # A client that hangs up must not leave a parked waiter behind.
        request.notifyFinish().addErrback(lambda _failure: work.cancel())
        try:
            response = await work
        except CancelledError:
            return 200, {}
        what = f"a sync for {requester.user_id}"
        body = encode_spliced(response, lambda value: encode_json_dropping_unencodable(value, what))
        return 200, RawResponse(body, b"application/json")

    router.add("GET", client_paths("/sync"), sync)
