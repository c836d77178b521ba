"""``/keys/...``: device and one-time key upload, query, claim, changes, and cross-signing."""

from __future__ import annotations

import logging
from typing import Any

from twisted.internet.defer import Deferred
from twisted.web.server import Request

from homeserver.errors import MatrixError
from homeserver.handlers.accounts.auth import Auth, Requester
from homeserver.handlers.e2ee.cross_signing import CrossSigningHandler
from homeserver.handlers.e2ee.device_lists import DeviceListsHandler
from homeserver.handlers.e2ee.e2e_keys import E2eKeysHandler
from homeserver.handlers.e2ee.to_device import ToDeviceHandler
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import parse_json_object, query_str
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)
logger = logging.getLogger(__name__)


def require_device(requester: Requester) -> str:
    if requester.device_id is None:
        raise MatrixError(400, "M_UNKNOWN", "This access token has no device")
    return requester.device_id


def prepare_e2ee(hs: Server) -> None:
    """Hook into device deletion and create the E2EE streams before the first request."""
    hs.get(DeviceListsHandler)

    async def prepare() -> None:
        await hs.get(DeviceListsHandler).store.stream_writer()
        await hs.get(ToDeviceHandler).prepare()

    Deferred.fromCoroutine(prepare()).addErrback(
        lambda failure: logger.error("E2EE stream setup failed: %s", failure.getErrorMessage()))


def register_routes(router: Router, hs: Server) -> None:
    max_body = hs.config.max_request_body_size
    prepare_e2ee(hs)

    async def upload(request: Request, device_id: str | None = None) -> tuple[int, dict[str, Any]]:
        # The r0-era /keys/upload/{deviceId} form names the device in the path; the token decides.
        requester = await get_user_by_req(request, hs.get(Auth), allow_guest=True)
        body = parse_json_object(request, max_body)
        counts = await hs.get(E2eKeysHandler).upload(requester.user_id, require_device(requester), body)
        return 200, {"one_time_key_counts": counts}

    async def query(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth), allow_guest=True)
        body = parse_json_object(request, max_body)
        return 200, await hs.get(E2eKeysHandler).query(requester.user_id, body)

    async def claim(request: Request) -> tuple[int, dict[str, Any]]:
        await get_user_by_req(request, hs.get(Auth), allow_guest=True)
        body = parse_json_object(request, max_body)
        return 200, await hs.get(E2eKeysHandler).claim(body)

    async def changes(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth), allow_guest=True)
        from_token = query_str(request, "from", required=True)
        to_token = query_str(request, "to", required=True)
        assert from_token is not None and to_token is not None
        delta = await hs.get(E2eKeysHandler).changes(requester.user_id, from_token, to_token)
        return 200, {"changed": sorted(delta.changed), "left": sorted(delta.left)}

    async def device_signing_upload(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth))
        body = parse_json_object(request, max_body)
        await hs.get(CrossSigningHandler).upload_signing_keys(requester.user_id, body)
        return 200, {}

    async def signatures_upload(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth))
        body = parse_json_object(request, max_body)
        return 200, await hs.get(CrossSigningHandler).upload_signatures(requester.user_id, body)

    router.add("POST", client_paths("/keys/upload"), upload)
    router.add("POST", client_paths("/keys/upload/{device_id}"), upload)  # r0 clients still send this
    router.add("POST", client_paths("/keys/query"), query)
    router.add("POST", client_paths("/keys/claim"), claim)
    router.add("GET", client_paths("/keys/changes"), changes)
    router.add("POST", client_paths("/keys/device_signing/upload")
               + client_paths("/keys/device_signing/upload", ("/_matrix/client/unstable",)),
               device_signing_upload)
    router.add("POST", client_paths("/keys/signatures/upload")
               + client_paths("/keys/signatures/upload", ("/_matrix/client/unstable",)),
               signatures_upload)
