"""Clients that wait for news: a /sync long-poll loop, and Vignette's WebSocket stream.

Both hand each timeline event to ``on_event`` with its arrival time, and share one shape (prime, start,
stop, ``connected``) so the fan-out and idle workloads run unchanged over either transport.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import attrs

from bench.client import MatrixClient, MatrixRequestError, timeline_events

# Vignette's stream endpoint (docs/websocket.md): sync-shaped frames, each acknowledged by its next_batch.
STREAM_PATH = "/_matrix/client/unstable/org.vignette.ws/stream"
OnEvent = Callable[[dict[str, Any], float], None]


class WebSocketUnavailable(Exception):
    """The server has no WebSocket stream endpoint (Synapse, or a Vignette built before it)."""


@attrs.define
class Poller:
    client: MatrixClient
    sync_filter: str | None
    on_event: OnEvent
    timeout_ms: int = 30_000
    since: str | None = None
    polls: int = 0
    errors: int = 0
    last_error: str | None = None
    connected: asyncio.Event = attrs.field(factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    async def prime(self) -> None:
        """An initial /sync so that only what happens from now on is seen."""
        body = await self.client.sync(sync_filter=self.sync_filter)
        self.since = body["next_batch"]

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        raise NotImplementedError

    def _deliver(self, body: dict[str, Any], arrived: float) -> None:
        self.polls += 1
        self.since = body["next_batch"]
        for event in timeline_events(body):
            self.on_event(event, arrived)

    def _failed(self, exc: BaseException) -> None:
        self.errors += 1
        self.last_error = str(exc) or type(exc).__name__

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None


@attrs.define
class SyncPoller(Poller):
    """Long-polls /sync in a loop."""

    async def _run(self) -> None:
        self.connected.set()  # a long-poll has no handshake to wait for
        while True:
            try:
                body = await self.client.sync(self.since, self.timeout_ms, self.sync_filter)
            except (MatrixRequestError, aiohttp.ClientError, TimeoutError) as exc:
                self._failed(exc)
                await asyncio.sleep(0.5)
                continue
            self._deliver(body, time.perf_counter())


@attrs.define
class StreamPoller(Poller):
    """Holds one WebSocket stream open from ``since``, acknowledging every frame as it lands."""

    def url_params(self) -> dict[str, str]:
        params = {"access_token": str(self.client.access_token)}
        if self.since:
            params["since"] = self.since
        if self.sync_filter:
            params["filter"] = self.sync_filter
        return params

    async def _run(self) -> None:
        try:
            async with self.client.session.ws_connect(self.client.base_url + STREAM_PATH,
                                                      params=self.url_params(), heartbeat=None,
                                                      max_msg_size=0) as ws:
                self.connected.set()
                async for message in ws:
                    if message.type != aiohttp.WSMsgType.TEXT:
                        continue
                    arrived = time.perf_counter()
                    frame = json.loads(message.data)
                    if frame.get("type") != "sync":
                        continue
                    body = frame["sync"]
                    await ws.send_str(json.dumps({"type": "ack", "next_batch": body["next_batch"]}))
                    self._deliver(body, arrived)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._failed(exc)
            self.connected.set()


async def check_stream_endpoint(client: MatrixClient) -> None:
    """Raise WebSocketUnavailable unless the server upgrades our stream request."""
    try:
        async with client.session.ws_connect(client.base_url + STREAM_PATH,
                                             params={"access_token": str(client.access_token)}):
            pass
    except aiohttp.WSServerHandshakeError as exc:
        raise WebSocketUnavailable(f"no WebSocket stream endpoint ({exc.status} on {STREAM_PATH})") from exc
