"""Helpers for sync tests: rooms and messages over HTTP, /sync calls, and a WebSocket stream client."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import attrs
import websocket

from tests.support.client import Client, q

WS_PATH = "/_matrix/client/unstable/org.vignette.ws/stream"


def create_room(client: Client, **body: Any) -> str:
    response = client.post("/_matrix/client/v3/createRoom", body or {"preset": "private_chat"})
    assert response.status == 200, response
    return response.body["room_id"]


def invite(client: Client, room_id: str, user_id: str) -> None:
    response = client.post(f"/_matrix/client/v3/rooms/{q(room_id)}/invite", {"user_id": user_id})
    assert response.status == 200, response


def join(client: Client, room_id: str) -> None:
    response = client.post(f"/_matrix/client/v3/join/{q(room_id)}", {})
    assert response.status == 200, response


def leave(client: Client, room_id: str) -> None:
    response = client.post(f"/_matrix/client/v3/rooms/{q(room_id)}/leave", {})
    assert response.status == 200, response


def shared_room(owner: Client, *others: Client) -> str:
    """A private room the owner created, every other client invited and joined."""
    room_id = create_room(owner)
    for other in others:
        invite(owner, room_id, str(other.user_id))
        join(other, room_id)
    return room_id


def send_text(client: Client, room_id: str, text: str) -> str:
    txn = secrets.token_hex(8)
    response = client.put(f"/_matrix/client/v3/rooms/{q(room_id)}/send/m.room.message/{txn}",
                          {"msgtype": "m.text", "body": text})
    assert response.status == 200, response
    return response.body["event_id"]


def sync(client: Client, since: str | None = None, timeout: int = 0, sync_filter: Any = None,
         **params: Any) -> dict[str, Any]:
    query: dict[str, Any] = dict(params)
    if since is not None:
        query["since"] = since
    query["timeout"] = timeout
    if sync_filter is not None:
        query["filter"] = sync_filter if isinstance(sync_filter, str) else json.dumps(sync_filter)
    response = client.get("/_matrix/client/v3/sync", params=query, timeout=timeout / 1000 + 30)
    assert response.status == 200, response
    return response.body


def joined_room(body: dict[str, Any], room_id: str) -> dict[str, Any] | None:
    return body.get("rooms", {}).get("join", {}).get(room_id)


def room_messages(body: dict[str, Any], rooms: list[str]) -> list[tuple[str, str]]:
    """(room, body) of every m.room.message in ``rooms``' timelines, rooms in that order."""
    return [
        (room_id, e["content"]["body"])
        for room_id in rooms
        for e in timeline_events(body, room_id)
        if e["type"] == "m.room.message"
    ]


def stream_messages(stream: StreamClient, rooms: list[str], total: int) -> list[tuple[str, str]]:
    """Frames until ``total`` messages (read as they come, so the socket answers pings)."""
    seen: list[tuple[str, str]] = []
    while len(seen) < total:
        seen += room_messages(stream.next_frame(), rooms)
    return seen


def timeline_events(body: dict[str, Any], room_id: str) -> list[dict[str, Any]]:
    room = joined_room(body, room_id)
    return room["timeline"]["events"] if room else []


def ephemeral_of(body: dict[str, Any], room_id: str, event_type: str) -> list[dict[str, Any]]:
    room = joined_room(body, room_id)
    if room is None:
        return []
    return [e for e in room["ephemeral"]["events"] if e["type"] == event_type]


def sync_until(client: Client, since: str, predicate: Any, attempts: int = 20,
               timeout: int = 5000, **kwargs: Any) -> tuple[dict[str, Any], str]:
    """Long-poll until predicate(body) holds; returns (that body, the token after it)."""
    for _ in range(attempts):
        body = sync(client, since, timeout=timeout, **kwargs)
        since = body["next_batch"]
        if predicate(body):
            return body, since
    raise AssertionError("the expected change never arrived")


@attrs.define
class StreamClient:
    """A WebSocket stream connection (websocket-client, blocking)."""

    ws: websocket.WebSocket
    pending: list[dict[str, Any]] = attrs.field(factory=list)
    last_token: str | None = None

    @classmethod
    def connect(cls, client: Client, since: str | None = None, sync_filter: Any = None,
                timeout: float = 30) -> StreamClient:
        url = client.base_url.replace("http://", "ws://") + WS_PATH
        params = [f"access_token={client.access_token}"]
        if since is not None:
            params.append(f"since={q(since)}")
        if sync_filter is not None:
            params.append(f"filter={q(json.dumps(sync_filter))}")
        ws = websocket.create_connection(url + "?" + "&".join(params), timeout=timeout)
        return cls(ws)

    def receive(self) -> dict[str, Any]:
        if self.pending:
            return self.pending.pop(0)
        return json.loads(self.ws.recv())

    def next_frame(self, ack: bool = True) -> dict[str, Any]:
        """The next sync frame (replies that arrive first are kept for later)."""
        skipped = []
        while True:
            message = self.receive()
            if message.get("type") == "sync":
                self.pending[:0] = skipped
                body = message["sync"]
                self.last_token = body["next_batch"]
                if ack:
                    self.ack(body["next_batch"])
                return body
            skipped.append(message)

    def ack(self, token: str) -> None:
        self.ws.send(json.dumps({"type": "ack", "next_batch": token}))

    def request(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Send a request and wait for its reply (frames that arrive meanwhile are kept)."""
        request_id = secrets.token_hex(4)
        self.ws.send(json.dumps({"type": kind, "request_id": request_id, **fields}))
        skipped = []
        while True:
            message = self.receive()
            if message.get("request_id") == request_id and message.get("type") in ("response", "error"):
                self.pending[:0] = skipped
                return message
            skipped.append(message)

    def next_reply(self) -> dict[str, Any]:
        """The next message that is not a sync frame (frames are acknowledged and dropped)."""
        while True:
            message = self.receive()
            if message.get("type") != "sync":
                return message
            self.ack(message["sync"]["next_batch"])

    def close_code(self) -> int | None:
        """Read until the server closes the socket; its close code."""
        while True:
            # recv_frame does not answer the close itself, so a server that hangs up
            # right after its close frame cannot fail us with a reset while we reply.
            frame = self.ws.recv_frame()
            if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
                data = frame.data
                return int.from_bytes(data[:2], "big") if len(data) >= 2 else None

    def frames(self) -> Iterator[dict[str, Any]]:
        while True:
            yield self.next_frame()

    def close(self) -> None:
        self.ws.close()
