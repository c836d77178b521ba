"""Forwarding from a worker to the main process, over HTTP on its ``instance_map`` address.

A worker serves the read endpoints it has routes for; everything else that reaches it (a
send, a state change, a login) is a write that belongs to the main process, so it is
passed on unchanged, with the client's own credentials, and the answer passed back.  The
client cannot tell, and the write happens in the one process that writes its stream.
The requests go out through the one outbound HTTP client class, with an address filter
that admits nothing but the instances in ``instance_map``.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from typing import Any

from twisted.internet.defer import Deferred
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from homeserver.config.workers import MAIN
from homeserver.errors import MatrixError
from homeserver.http.resource import finish_response, write_error
from homeserver.outbound.address_filter import AddressFilter
from homeserver.outbound.client import OutboundHttpClient, OutboundRequestError
from homeserver.server import Server

logger = logging.getLogger(__name__)

#: Request headers that carry meaning for the main process; hop-by-hop ones stay behind.
FORWARDED_REQUEST_HEADERS = ("Authorization", "Content-Type", "Accept", "User-Agent")
#: A forwarded request may itself long-poll (``/events``, ``/notifications`` do not; be generous).
FORWARD_TIMEOUT_S = 120.0
MAX_FORWARDED_RESPONSE = 64 * 1024 * 1024


def instance_filter(hosts: list[str]) -> AddressFilter:
    """Block everything except the instance addresses (any address if one is a host name)."""
    literals = []
    for host in hosts:
        try:
            literals.append(ipaddress.ip_address(host.strip("[]")))
        except ValueError:
            return AddressFilter.from_ranges([])
    return AddressFilter.from_ranges(
        ["0.0.0.0/0", "::/0"], [f"{ip}/{ip.max_prefixlen}" for ip in literals]
    )


class InstanceClient:
    """HTTP to the other instances of this server (built once per process)."""

    def __init__(self, hs: Server) -> None:
        self.instances = dict(hs.config.instance_map)
        self.http = OutboundHttpClient(
            hs,
            address_filter=instance_filter([location.host for location in self.instances.values()]),
        )

    def url(self, instance: str, path_and_query: str) -> str:
        return self.instances[instance].base_url() + path_and_query

    async def request(
        self,
        instance: str,
        method: str,
        path_and_query: str,
        *,
        headers: dict[str, str],
        body: bytes | None,
    ) -> tuple[int, str, bytes]:
        """(status, content type, body) of the request as ``instance`` answered it."""
        response = await self.http.request(
            method,
            self.url(instance, path_and_query),
            headers=headers,
            body=body,
            timeout_s=FORWARD_TIMEOUT_S,
            max_response_bytes=MAX_FORWARDED_RESPONSE,
        )
        content = await response.read()
        return response.code, response.header("Content-Type") or "application/json", content

    async def call_main(
        self, access_token: str, method: str, path: str, body: dict[str, Any]
    ) -> Any:
        """One client API request to the main process as the client: its JSON answer, or its
        error raised here as the same MatrixError (``WriterForwarding.forward``)."""
        headers = {"Authorization": f"Bearer {access_token}", "Content-Type": "application/json"}
        try:
            status, _, content = await self.request(
                MAIN, method, path, headers=headers, body=json.dumps(body).encode()
            )
            answer = json.loads(content)
        except (OutboundRequestError, ValueError) as exc:
            logger.warning("forwarding %s %s to the main process failed: %s", method, path, exc)
            raise MatrixError(502, "M_UNKNOWN", "The main process cannot be reached") from None
        if status != 200:
            error = answer if isinstance(answer, dict) else {}
            raise MatrixError(
                status, str(error.get("errcode", "M_UNKNOWN")), str(error.get("error", ""))
            )
        return answer


class ForwardingResource(Resource):
    """What a worker's router has no route for goes to the main process."""

    isLeaf = True

    def __init__(self, hs: Server) -> None:
        super().__init__()
        self.client = hs.get(InstanceClient)

    def render(self, request: Request) -> Any:
        request.route_name = "forwarded"  # type: ignore[attr-defined]  # for the access log
        Deferred.fromCoroutine(self._forward(request)).addErrback(self._failed, request)
        return NOT_DONE_YET

    async def _forward(self, request: Request) -> None:
        headers = {}
        for name in FORWARDED_REQUEST_HEADERS:
            value = request.getHeader(name)
            if value is not None:
                headers[name] = value
        client = request.getClientAddress()
        headers["X-Forwarded-For"] = getattr(client, "host", "")
        body = b""
        if request.content is not None:
            request.content.seek(0)
            body = request.content.read()
        method = request.method.decode("ascii")
        status, content_type, content = await self.client.request(
            MAIN,
            method,
            request.uri.decode("ascii"),
            headers=headers,
            body=body if body or method in ("POST", "PUT") else None,
        )
        if not request._disconnected:
            finish_response(request, status, content, content_type.encode("latin-1"))

    @staticmethod
    def _failed(failure: Any, request: Request) -> None:
        if request._disconnected or request.finished:
            return
        if failure.check(OutboundRequestError):
            logger.warning(
                "forwarding %s to the main process failed: %s", request.path, failure.value
            )
            write_error(
                request, MatrixError(502, "M_UNKNOWN", "The main process cannot be reached")
            )
            return
        logger.error("forwarding %s failed", request.path, exc_info=failure.value)
        write_error(request, MatrixError(500, "M_UNKNOWN", "Internal server error"))
