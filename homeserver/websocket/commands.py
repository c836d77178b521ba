"""Requests a client sends over the stream, answered through the same handlers as HTTP."""

from __future__ import annotations

from typing import Any

from homeserver.errors import bad_json
from homeserver.handlers.ephemeral.receipts import ReceiptHandler
from homeserver.handlers.ephemeral.typing import TypingHandler
from homeserver.handlers.rooms.message_send import EventSendHandler
from homeserver.http.request import optional, require
from homeserver.server import Server


async def send_event(hs: Server, requester: Any, message: dict[str, Any]) -> dict[str, Any]:
    room_id = require(message, "room_id", str, "a room ID")
    event_type = require(message, "event_type", str, "an event type")
    txn_id = require(message, "txn_id", str, "a transaction ID")
    content = require(message, "content", dict, "an object")
    # Same path and idempotency as PUT /rooms/{roomId}/send/{eventType}/{txnId}.
    event_id = await hs.get(EventSendHandler).send_event(requester, room_id, event_type, content,
                                                        txn_id=txn_id)
    return {"event_id": event_id}


async def set_typing(hs: Server, requester: Any, message: dict[str, Any]) -> dict[str, Any]:
    room_id = require(message, "room_id", str, "a room ID")
    typing = require(message, "typing", bool, "a boolean")
    timeout = optional(message, "timeout", int, "an integer (milliseconds)")
    if timeout is not None and timeout < 0:
        raise bad_json("timeout must not be negative")
    await hs.get(TypingHandler).set_typing(requester.user_id, room_id, typing, timeout)
    return {}


async def send_receipt(hs: Server, requester: Any, message: dict[str, Any]) -> dict[str, Any]:
    room_id = require(message, "room_id", str, "a room ID")
    receipt_type = require(message, "receipt_type", str, "a receipt type")
    event_id = require(message, "event_id", str, "an event ID")
    thread_id = optional(message, "thread_id", str, "a string")
    await hs.get(ReceiptHandler).send_receipt(requester.user_id, room_id, receipt_type, event_id,
                                              thread_id)
    return {}


COMMANDS = {"send": send_event, "typing": set_typing, "receipt": send_receipt}
