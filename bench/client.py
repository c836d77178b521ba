"""A minimal asyncio Matrix client over aiohttp: just the client-API calls the workloads make."""

from __future__ import annotations

import itertools
import json
import secrets
from typing import Any
from urllib.parse import quote

import aiohttp
import attrs

CLIENT_PREFIX = "/_matrix/client/v3"
_txn_counter = itertools.count()


class MatrixRequestError(Exception):
    """A non-200 answer; the message carries the endpoint, status and errcode so reports say why."""

    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        errcode = body.get("errcode") if isinstance(body, dict) else None
        error = body.get("error") if isinstance(body, dict) else str(body)[:200]
        super().__init__(f"{method} {path.split('?')[0]} -> {status} {errcode or ''} {error or ''}".strip())
        self.status = status
        self.errcode = errcode


def q(value: str) -> str:
    return quote(value, safe="")


def new_session(connections: int = 0) -> aiohttp.ClientSession:
    """One session per server: unlimited pooled connections, so thousands of long-polls can be open."""
    connector = aiohttp.TCPConnector(limit=connections, force_close=False, enable_cleanup_closed=True)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None))


@attrs.define
class MatrixClient:
    session: aiohttp.ClientSession
    base_url: str
    access_token: str | None = None
    user_id: str | None = None
    device_id: str | None = None

    async def request(self, method: str, path: str, body: Any = None, *,
                      params: dict[str, str] | None = None, timeout_s: float = 120) -> Any:
        """``path`` is relative to /_matrix/client/v3 unless it starts with /_; returns the JSON body."""
        url = self.base_url + (path if path.startswith("/_") else CLIENT_PREFIX + path)
        headers = {"Authorization": f"Bearer {self.access_token}"} if self.access_token else {}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        async with self.session.request(method, url, data=data, params=params, headers=headers,
                                        timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            raw = await response.read()
            try:
                parsed: Any = json.loads(raw) if raw else None
            except ValueError:
                parsed = raw.decode(errors="replace")
            if response.status != 200:
                raise MatrixRequestError(method, path, response.status, parsed)
            return parsed

    async def register(self, localpart: str) -> None:
        """Open registration with m.login.dummy; tries without a password first (no hash to compute)."""
        body: dict[str, Any] = {"username": localpart, "auth": {"type": "m.login.dummy"},
                                "initial_device_display_name": "bench"}
        try:
            answer = await self.request("POST", "/register", body)
        except MatrixRequestError as exc:
            if exc.status != 400 or exc.errcode == "M_USER_IN_USE":
                raise
            answer = await self.request("POST", "/register", {**body, "password": secrets.token_hex(8)})
        self.access_token = answer["access_token"]
        self.user_id = answer["user_id"]
        self.device_id = answer.get("device_id")

    async def upload(self, data: bytes, content_type: str) -> str:
        """POST /_matrix/media/v3/upload; the mxc:// URI."""
        headers = {"Authorization": f"Bearer {self.access_token}", "Content-Type": content_type}
        async with self.session.post(self.base_url + "/_matrix/media/v3/upload", data=data, headers=headers,
                                     timeout=aiohttp.ClientTimeout(total=120)) as response:
            body = await response.json(content_type=None)
            if response.status != 200:
                raise MatrixRequestError("POST", "/_matrix/media/v3/upload", response.status, body)
            return body["content_uri"]

    async def download(self, mxc_uri: str) -> int:
        """GET the authenticated download of ``mxc_uri``, reading (and dropping) the body; its length."""
        path = "/_matrix/client/v1/media/download/" + mxc_uri[len("mxc://"):]
        headers = {"Authorization": f"Bearer {self.access_token}"}
        async with self.session.get(self.base_url + path, headers=headers,
                                    timeout=aiohttp.ClientTimeout(total=120)) as response:
            if response.status != 200:
                raise MatrixRequestError("GET", path, response.status, await response.read())
            size = 0
            async for chunk in response.content.iter_chunked(256 * 1024):
                size += len(chunk)
            return size

    async def create_room(self, **extra: Any) -> str:
        body = {"preset": "public_chat", **extra}
        return (await self.request("POST", "/createRoom", body))["room_id"]

    async def join(self, room_id: str) -> None:
        await self.request("POST", f"/join/{q(room_id)}", {})

    async def send_message(self, room_id: str, text: str, **extra_content: Any) -> str:
        return await self.send_event(room_id, "m.room.message", {"msgtype": "m.text", "body": text, **extra_content})

    async def send_event(self, room_id: str, event_type: str, content: dict[str, Any]) -> str:
        txn = f"b{secrets.token_hex(3)}{next(_txn_counter)}"
        answer = await self.request("PUT", f"/rooms/{q(room_id)}/send/{q(event_type)}/{txn}", content)
        return answer["event_id"]

    async def sync(self, since: str | None = None, timeout_ms: int = 0, sync_filter: str | None = None,
                   full_state: bool = False) -> dict[str, Any]:
        params = {"timeout": str(timeout_ms)}
        if since:
            params["since"] = since
        if sync_filter:
            params["filter"] = sync_filter
        if full_state:
            params["full_state"] = "true"
        return await self.request("GET", "/sync", params=params, timeout_s=timeout_ms / 1000 + 120)


def timeline_events(sync_body: dict[str, Any], room_id: str | None = None) -> list[dict[str, Any]]:
    """Timeline events of joined rooms in a /sync answer (one room, or all)."""
    joined = (sync_body.get("rooms") or {}).get("join") or {}
    rooms = [joined.get(room_id) or {}] if room_id else list(joined.values())
    events: list[dict[str, Any]] = []
    for room in rooms:
        events.extend((room.get("timeline") or {}).get("events") or [])
    return events
