"""``POST /pushers/set`` and ``GET /pushers``: a user's pushers, checked as the spec says.

A pusher is the user's ``(app_id, pushkey)`` and belongs to the device (and access token)
that set it: deleting that device, or logging it out, deletes its pushers, as Synapse does
(the pool listens to the device hook). Only ``kind: "http"`` is served; ``null`` deletes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import attrs

from homeserver.errors import MatrixError, bad_json, invalid_param
from homeserver.handlers.accounts.auth import now_ms
from homeserver.server import Server
from storage.stores.events import EventStore
from storage.stores.pushers import Pusher, PusherSpec, PusherStore

NOTIFY_PATH = "/_matrix/push/v1/notify"
MAX_APP_ID_LENGTH = 64
MAX_PUSHKEY_BYTES = 512
MAX_TEXT_LENGTH = 255
FORMATS = ("event_id_only",)
REQUIRED_TO_CREATE = ("app_display_name", "device_display_name", "lang", "data")


@attrs.frozen
class PusherRequest:
    """A checked ``/pushers/set`` body. ``kind`` None means delete."""

    kind: str | None
    app_id: str
    pushkey: str
    append: bool = False
    app_display_name: str = ""
    device_display_name: str = ""
    lang: str = ""
    profile_tag: str = ""
    data: dict[str, Any] = attrs.field(factory=dict)


def _missing(names: list[str]) -> MatrixError:
    return MatrixError(400, "M_MISSING_PARAM", "Missing parameters: " + ", ".join(names))


def _text(body: dict[str, Any], name: str, limit: int = MAX_TEXT_LENGTH) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise bad_json(f"{name} must be a string")
    if len(value) > limit:
        raise invalid_param(f"{name} may not be longer than {limit} characters")
    return value


def check_gateway_url(url: Any) -> str:
    """An http(s) URL whose path is exactly ``/_matrix/push/v1/notify`` (the spec asks for
    HTTPS; plain HTTP stays allowed for gateways on a private network, as in Synapse)."""
    if not isinstance(url, str):
        raise bad_json("data.url must be a string")
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        raise invalid_param("data.url is not a valid URL") from None
    if not url.isascii() or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise invalid_param("data.url must be an http or https URL")
    if parts.path != NOTIFY_PATH:
        raise invalid_param(f"data.url must have the path {NOTIFY_PATH}")
    return url


def parse_pusher_request(body: dict[str, Any]) -> PusherRequest:
    """Check a ``/pushers/set`` body: missing fields are M_MISSING_PARAM (all of them named),
    wrong JSON types M_BAD_JSON, values the spec does not allow M_INVALID_PARAM."""
    missing = [name for name in ("kind", "app_id", "pushkey") if name not in body]
    kind = body.get("kind")
    if kind is not None or "kind" not in body:
        missing += [name for name in REQUIRED_TO_CREATE if body.get(name) is None]
    if missing:
        raise _missing(missing)
    if kind is not None and not isinstance(kind, str):
        raise bad_json("kind must be a string or null")
    app_id = _text(body, "app_id", MAX_APP_ID_LENGTH)
    pushkey = _text(body, "pushkey", 4 * MAX_PUSHKEY_BYTES)
    if not app_id or not pushkey:
        raise invalid_param("app_id and pushkey may not be empty")
    if len(pushkey.encode("utf-8")) > MAX_PUSHKEY_BYTES:
        raise invalid_param(f"pushkey may not be longer than {MAX_PUSHKEY_BYTES} bytes")
    append = body.get("append", False)
    if not isinstance(append, bool):
        raise bad_json("append must be a boolean")
    if kind is None:
        return PusherRequest(None, app_id, pushkey)
    if kind != "http":
        raise invalid_param(f"Unsupported pusher kind {kind!r}: only 'http' (or null, to delete)")
    data = body["data"]
    if not isinstance(data, dict):
        raise bad_json("data must be an object")
    if "url" not in data:
        raise _missing(["data.url"])
    check_gateway_url(data["url"])
    if data.get("format") is not None and data["format"] not in FORMATS:
        raise invalid_param("data.format must be 'event_id_only' or left out")
    profile_tag = _text(body, "profile_tag") if body.get("profile_tag") is not None else ""
    return PusherRequest(kind, app_id, pushkey, append, _text(body, "app_display_name"),
                         _text(body, "device_display_name"), _text(body, "lang"), profile_tag, dict(data))


class PusherSettings:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.store = hs.get(PusherStore)
        self.events = hs.get(EventStore)

    async def get_pushers(self, user_id: str) -> list[Pusher]:
        return await self.store.get_pushers_for_user(user_id)

    async def set_pusher(self, user_id: str, device_id: str | None, access_token_id: int | None,
                         request: PusherRequest) -> Pusher | None:
        """Create, update or (kind null) delete; the stored pusher, or None after a delete."""
        if request.kind is None:
            await self.store.delete_pusher(user_id, request.app_id, request.pushkey)
            return None
        spec = PusherSpec(user_id, device_id, access_token_id, request.kind, request.app_id,
                          request.app_display_name, request.device_display_name, request.pushkey, request.lang,
                          request.profile_tag, request.data)
        since = await self.events.get_max_stream_position()
        return await self.store.set_pusher(spec, request.append, now_ms(self.hs), since)

    async def on_devices_deleted(self, user_id: str, device_ids: list[str]) -> None:
        """A device went (deleted, logged out, the account deactivated): so do its pushers."""
        await self.store.delete_pushers_of_devices(user_id, device_ids)

    async def on_user_deactivated(self, user_id: str) -> None:
        """A deactivated account keeps no pusher, whichever token set it (as Synapse)."""
        await self.store.delete_pushers_of_user(user_id)
