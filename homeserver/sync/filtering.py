"""Sync filters (spec: "Filtering"): validation and matching, with no I/O.

A filter arrives as JSON (inline on /sync, or saved with POST /user/{id}/filter).
We validate its shape once, then turn it into small matcher objects that the
sync providers consult.  Unknown keys are ignored, as the spec asks.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import attrs

from homeserver.errors import bad_json

DEFAULT_TIMELINE_LIMIT = 10
MAX_LIMIT = 1000

_LIST_FIELDS = ("types", "not_types", "senders", "not_senders", "rooms", "not_rooms")


def _string_list(value: Any, where: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise bad_json(f"{where} must be a list of strings")
    return list(value)


def _check_event_filter(value: Any, where: str) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise bad_json(f"{where} must be an object")
    for name in _LIST_FIELDS:
        _string_list(value.get(name), f"{where}.{name}")
    limit = value.get("limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise bad_json(f"{where}.limit must be a non-negative integer")
    for flag in ("contains_url", "lazy_load_members", "include_redundant_members",
                 "unread_thread_notifications"):
        if value.get(flag) is not None and not isinstance(value[flag], bool):
            raise bad_json(f"{where}.{flag} must be a boolean")


def validate_filter(body: Any) -> dict[str, Any]:
    """Raise M_BAD_JSON unless ``body`` has the shape of a Filter; return it."""
    if not isinstance(body, dict):
        raise bad_json("filter must be a JSON object")
    _string_list(body.get("event_fields"), "event_fields")
    if body.get("event_format") not in (None, "client", "federation"):
        raise bad_json("event_format must be 'client' or 'federation'")
    for name in ("presence", "account_data"):
        _check_event_filter(body.get(name), name)
    room = body.get("room")
    if room is not None:
        if not isinstance(room, dict):
            raise bad_json("room must be an object")
        _string_list(room.get("rooms"), "room.rooms")
        _string_list(room.get("not_rooms"), "room.not_rooms")
        if room.get("include_leave") is not None and not isinstance(room["include_leave"], bool):
            raise bad_json("room.include_leave must be a boolean")
        for name in ("ephemeral", "state", "timeline", "account_data"):
            _check_event_filter(room.get(name), f"room.{name}")
    return body


def _type_matches(event_type: str, patterns: list[str]) -> bool:
    return any(("*" not in p and p == event_type) or ("*" in p and _glob(p).match(event_type))
               for p in patterns)


@lru_cache(maxsize=1024)
def _glob(pattern: str) -> re.Pattern[str]:
    """Matrix type filters only know '*'; everything else is literal."""
    return re.compile("".join(".*" if part == "*" else re.escape(part)
                              for part in re.split(r"(\*)", pattern)) + r"\Z")


@attrs.frozen
class EventFilter:
    """types/senders/rooms allow- and deny-lists plus a limit; None means "no restriction"."""

    types: list[str] | None = None
    not_types: list[str] = attrs.field(factory=list)
    senders: list[str] | None = None
    not_senders: list[str] = attrs.field(factory=list)
    rooms: list[str] | None = None
    not_rooms: list[str] = attrs.field(factory=list)
    limit: int | None = None
    contains_url: bool | None = None
    lazy_load_members: bool = False
    include_redundant_members: bool = False
    unread_thread_notifications: bool = False

    @classmethod
    def from_json(cls, value: dict[str, Any] | None, default_limit: int | None = None) -> EventFilter:
        value = value or {}
        limit = value.get("limit", default_limit)
        return cls(
            types=value.get("types"), not_types=value.get("not_types") or [],
            senders=value.get("senders"), not_senders=value.get("not_senders") or [],
            rooms=value.get("rooms"), not_rooms=value.get("not_rooms") or [],
            limit=None if limit is None else min(int(limit), MAX_LIMIT),
            contains_url=value.get("contains_url"),
            lazy_load_members=bool(value.get("lazy_load_members", False)),
            include_redundant_members=bool(value.get("include_redundant_members", False)),
            unread_thread_notifications=bool(value.get("unread_thread_notifications", False)),
        )

    def allows_type(self, event_type: str) -> bool:
        if _type_matches(event_type, self.not_types):
            return False
        return self.types is None or _type_matches(event_type, self.types)

    def allows_room(self, room_id: str) -> bool:
        if room_id in self.not_rooms:
            return False
        return self.rooms is None or room_id in self.rooms

    def allows(self, event: dict[str, Any]) -> bool:
        """Does a (client-format) event pass the type, sender, room and url rules?"""
        if not self.allows_type(str(event.get("type", ""))):
            return False
        sender = event.get("sender")
        if sender in self.not_senders or (self.senders is not None and sender not in self.senders):
            return False
        room_id = event.get("room_id")
        if room_id is not None and not self.allows_room(room_id):
            return False
        if self.contains_url is not None:
            content = event.get("content")
            has_url = isinstance(content, dict) and isinstance(content.get("url"), str)
            if has_url != self.contains_url:
                return False
        return True

    def filter(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [event for event in events if self.allows(event)]

    @property
    def blocks_everything(self) -> bool:
        return self.limit == 0 or self.types == [] or self.rooms == []


@attrs.frozen
class SyncFilter:
    """A whole Filter, parsed for the providers."""

    presence: EventFilter
    account_data: EventFilter
    rooms: list[str] | None
    not_rooms: list[str]
    include_leave: bool
    timeline: EventFilter
    state: EventFilter
    ephemeral: EventFilter
    room_account_data: EventFilter
    event_fields: list[str] | None
    event_format: str

    @classmethod
    def from_json(cls, value: dict[str, Any] | None) -> SyncFilter:
        value = value or {}
        room = value.get("room") or {}
        return cls(
            presence=EventFilter.from_json(value.get("presence")),
            account_data=EventFilter.from_json(value.get("account_data")),
            rooms=room.get("rooms"),
            not_rooms=room.get("not_rooms") or [],
            include_leave=bool(room.get("include_leave", False)),
            timeline=EventFilter.from_json(room.get("timeline"), DEFAULT_TIMELINE_LIMIT),
            state=EventFilter.from_json(room.get("state")),
            ephemeral=EventFilter.from_json(room.get("ephemeral")),
            room_account_data=EventFilter.from_json(room.get("account_data")),
            event_fields=value.get("event_fields"),
            event_format=value.get("event_format") or "client",
        )

    def allows_room(self, room_id: str) -> bool:
        if room_id in self.not_rooms:
            return False
        return self.rooms is None or room_id in self.rooms

    @property
    def lazy_load_members(self) -> bool:
        return self.state.lazy_load_members

    @property
    def unread_thread_notifications(self) -> bool:
        """Per-thread unread counts (the timeline filter's flag, as Synapse reads it)."""
        return self.timeline.unread_thread_notifications


def select_fields(event: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    """Apply ``event_fields``: keep only the named (dot-separated) paths."""
    if fields is None:
        return event
    result: dict[str, Any] = {}
    for path in fields:
        parts = [part.replace("\\.", ".") for part in re.split(r"(?<!\\)\.", path)]
        source: Any = event
        for part in parts:
            if not isinstance(source, dict) or part not in source:
                break
            source = source[part]
        else:
            target = result
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = source
    return result
