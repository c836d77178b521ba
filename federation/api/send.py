"""``PUT /_matrix/federation/v1/send/{txnId}``: transactions from other servers (thin; the work is
federation/receiver/transaction.py). Each counts against ``rc_federation`` for its origin."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from federation.receiver.transaction import TransactionReceiver
from federation.transport.auth import FederationAuth
from homeserver.handlers.ratelimit import RateLimiters
from homeserver.http.router import Router
from homeserver.server import Server

RESOURCES = ("federation",)


def register_routes(router: Router, hs: Server) -> None:
    async def send(request: Request, txn_id: str) -> tuple[int, Any]:
        origin, body = await hs.get(FederationAuth).authenticate(request, hs.config.max_request_body_size)
        async with hs.get(RateLimiters).federation.ratelimit(origin):
            return 200, await hs.get(TransactionReceiver).on_transaction(origin, txn_id, body)

    router.add("PUT", "/_matrix/federation/v1/send/{txn_id}", send)
