"""The sliding sync request body (MSC4186), parsed and checked: lists, room subscriptions,
required_state and the extensions. Wrong shapes are M_BAD_JSON, as on every endpoint."""

from __future__ import annotations

from typing import Any

import attrs

from homeserver.errors import bad_json

MAX_TIMELINE = 100
MAX_RANGE_END = 10_000
EXTENSIONS = ("to_device", "e2ee", "account_data", "receipts", "typing")


@attrs.frozen
class RoomConfig:
    """What to send about a room: its timeline's length and which state."""

    timeline_limit: int = 0
    required_state: tuple[tuple[str, str], ...] = ()

    def merge(self, other: RoomConfig) -> RoomConfig:
        return RoomConfig(max(self.timeline_limit, other.timeline_limit),
                          tuple(dict.fromkeys(self.required_state + other.required_state)))


@attrs.frozen
class ListRequest:
    ranges: tuple[tuple[int, int], ...]
    config: RoomConfig
    is_invite: bool | None = None


@attrs.frozen
class SlidingRequest:
    conn_id: str
    txn_id: str | None
    lists: dict[str, ListRequest]
    subscriptions: dict[str, RoomConfig]
    extensions: frozenset[str]
    to_device_since: int | None = None


def _int(value: Any, where: str, maximum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise bad_json(f"{where} must be a non-negative integer")
    return min(value, maximum)


def _config(body: Any, where: str) -> RoomConfig:
    if not isinstance(body, dict):
        raise bad_json(f"{where} must be an object")
    limit = _int(body.get("timeline_limit", 0), f"{where}.timeline_limit", MAX_TIMELINE)
    raw = body.get("required_state", [])
    if not isinstance(raw, list) or not all(isinstance(p, list) and len(p) == 2
                                            and all(isinstance(x, str) for x in p) for p in raw):
        raise bad_json(f"{where}.required_state must be a list of [type, state_key] pairs")
    return RoomConfig(limit, tuple((p[0], p[1]) for p in raw))


def _list(body: Any, where: str) -> ListRequest:
    config = _config(body, where)
    ranges = body.get("ranges", [[0, 20]])
    if not isinstance(ranges, list) or not all(isinstance(r, list) and len(r) == 2 for r in ranges):
        raise bad_json(f"{where}.ranges must be a list of [start, end] pairs")
    parsed = tuple((_int(r[0], f"{where}.ranges", MAX_RANGE_END), _int(r[1], f"{where}.ranges", MAX_RANGE_END))
                   for r in ranges)
    filters = body.get("filters", {})
    if not isinstance(filters, dict):
        raise bad_json(f"{where}.filters must be an object")
    is_invite = filters.get("is_invite")
    if is_invite is not None and not isinstance(is_invite, bool):
        raise bad_json(f"{where}.filters.is_invite must be a boolean")
    return ListRequest(parsed, config, is_invite)


def _extensions(body: Any) -> tuple[frozenset[str], int | None]:
    if not isinstance(body, dict):
        raise bad_json("extensions must be an object")
    enabled = set()
    since = None
    for name in EXTENSIONS:
        ext = body.get(name)
        if ext is None:
            continue
        if not isinstance(ext, dict) or not isinstance(ext.get("enabled", False), bool):
            raise bad_json(f"extensions.{name} must be an object with a boolean 'enabled'")
        if ext.get("enabled"):
            enabled.add(name)
        if name == "to_device" and ext.get("since") is not None:
            if not isinstance(ext["since"], str) or not ext["since"].isdigit():
                raise bad_json("extensions.to_device.since must be a next_batch from this server")
            since = int(ext["since"])
    return frozenset(enabled), since


def parse_sliding_request(body: dict[str, Any]) -> SlidingRequest:
    conn_id = body.get("conn_id", "")
    txn_id = body.get("txn_id")
    if not isinstance(conn_id, str) or (txn_id is not None and not isinstance(txn_id, str)):
        raise bad_json("conn_id and txn_id must be strings")
    lists = body.get("lists", {})
    subscriptions = body.get("room_subscriptions", {})
    if not isinstance(lists, dict) or not isinstance(subscriptions, dict):
        raise bad_json("lists and room_subscriptions must be objects")
    extensions, since = _extensions(body.get("extensions", {}))
    return SlidingRequest(
        conn_id=conn_id[:100], txn_id=txn_id,
        lists={name: _list(value, f"lists.{name}") for name, value in lists.items()},
        subscriptions={room: _config(value, f"room_subscriptions.{room}") for room, value in subscriptions.items()},
        extensions=extensions, to_device_since=since,
    )
