"""Requests a client sends over the stream, answered through the same handlers as HTTP.

In a worker, whose process writes no stream, each request goes to the main process as the
HTTP request it mirrors (``WriterForwarding``), with the client's own access token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from homeserver.errors import bad_json
from homeserver.handlers.ephemeral.receipts import ReceiptHandler
from homeserver.handlers.ephemeral.typing import TypingHandler
from homeserver.handlers.forwarding import Forward, WriterForwarding
from homeserver.handlers.rooms.message_send import EventSendHandler
from homeserver.http.request import optional, require
from homeserver.server import Server

CLIENT_V3 = "/_matrix/client/v3"


def _q(value: str) -> str:
    return quote(value, safe="")


async def send_event(hs: Server, requester: Any, message: dict[str, Any],
                     forward: Forward | None = None, token: str = "") -> dict[str, Any]:
    room_id = require(message, "room_id", str, "a room ID")
    event_type = require(message, "event_type", str, "an event type")
    txn_id = require(message, "txn_id", str, "a transaction ID")
    content = require(message, "content", dict, "an object")
    # Same path and idempotency as PUT /rooms/{roomId}/send/{eventType}/{txnId}.
    if forward is not None:
        path = f"{CLIENT_V3}/rooms/{_q(room_id)}/send/{_q(event_type)}/{_q(txn_id)}"
        answer = await forward(token, "PUT", path, content)
        return {"event_id": answer["event_id"]}
    event_id = await hs.get(EventSendHandler).send_event(requester, room_id, event_type, content,
                                                        txn_id=txn_id)
    return {"event_id": event_id}


async def set_typing(hs: Server, requester: Any, message: dict[str, Any],
                     forward: Forward | None = None, token: str = "") -> dict[str, Any]:
    room_id = require(message, "room_id", str, "a room ID")
    typing = require(message, "typing", bool, "a boolean")
    timeout = optional(message, "timeout", int, "an integer (milliseconds)")
    if timeout is not None and timeout < 0:
        raise bad_json("timeout must not be negative")
    if forward is not None:
        body: dict[str, Any] = {"typing": typing, **({"timeout": timeout} if timeout is not None else {})}
        await forward(token, "PUT", f"{CLIENT_V3}/rooms/{_q(room_id)}/typing/{_q(requester.user_id)}", body)
        return {}
    await hs.get(TypingHandler).set_typing(requester.user_id, room_id, typing, timeout)
    return {}


async def send_receipt(hs: Server, requester: Any, message: dict[str, Any],
                       forward: Forward | None = None, token: str = "") -> dict[str, Any]:
    room_id = require(message, "room_id", str, "a room ID")
    receipt_type = require(message, "receipt_type", str, "a receipt type")
    event_id = require(message, "event_id", str, "an event ID")
    thread_id = optional(message, "thread_id", str, "a string")
    if forward is not None:
        path = f"{CLIENT_V3}/rooms/{_q(room_id)}/receipt/{_q(receipt_type)}/{_q(event_id)}"
        await forward(token, "POST", path, {"thread_id": thread_id} if thread_id is not None else {})
        return {}
    await hs.get(ReceiptHandler).send_receipt(requester.user_id, room_id, receipt_type, event_id,
                                              thread_id)
    return {}


Command = Callable[..., Awaitable[dict[str, Any]]]
COMMANDS: dict[str, Command] = {"send": send_event, "typing": set_typing, "receipt": send_receipt}


async def run_command(hs: Server, command: Command, requester: Any, access_token: str,
                      message: dict[str, Any]) -> dict[str, Any]:
    """Run here, or (in a worker) forward to the process that writes."""
    forward = hs.get(WriterForwarding).forward
    if forward is None:
        return await command(hs, requester, message)
    return await command(hs, requester, message, forward, access_token)
