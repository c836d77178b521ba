"""Simplified sliding sync (MSC4186) at ``/_matrix/client/unstable/org.matrix.simplified_msc3575/sync``."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.web.server import Request

from homeserver.handlers.accounts.auth import Auth
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import parse_json_object, query_int, query_str
from homeserver.http.resource import RawResponse, encode_json_dropping_unencodable
from homeserver.http.router import Router
from homeserver.server import Server
from homeserver.sync.sliding.handler import SlidingSyncHandler

RESOURCES = ("client",)
PATH = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"


def register_routes(router: Router, hs: Server) -> None:
    max_body = hs.config.max_request_body_size

    async def sliding_sync(request: Request) -> tuple[int, Any]:
        requester = await get_user_by_req(request, hs.get(Auth))
        body = parse_json_object(request, max_body, allow_empty=True)
        pos = query_str(request, "pos")
        timeout = query_int(request, "timeout", default=0, minimum=0) or 0
        work = Deferred.fromCoroutine(hs.get(SlidingSyncHandler).sync(
            requester.user_id, requester.device_id, requester.access_token_id, body, pos, timeout))
        request.notifyFinish().addErrback(lambda _failure: work.cancel())
        try:
            response = await work
        except CancelledError:
            return 200, {}
        encoded = encode_json_dropping_unencodable(response, f"a sliding sync for {requester.user_id}")
        return 200, RawResponse(encoded, b"application/json")

    router.add("POST", PATH, sliding_sync)
