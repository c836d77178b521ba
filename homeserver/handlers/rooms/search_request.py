"""The ``POST /search`` request body and ``next_batch`` token, parsed and checked.

Only the ``room_events`` category exists in the spec. Wrong types are M_BAD_JSON, values outside
what the spec allows are M_INVALID_PARAM, and a missing ``search_term`` is M_MISSING_PARAM.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

import attrs

from homeserver.errors import bad_json, invalid_param, missing_param
from homeserver.handlers.rooms.history import parse_room_event_filter
from storage.stores.events import EventFilter

KEYS = ("content.body", "content.name", "content.topic")
GROUP_KEYS = ("room_id", "sender")
DEFAULT_LIMIT = 10
MAX_LIMIT = 100
DEFAULT_CONTEXT = 5
MAX_CONTEXT = 50
MAX_WORDS = 20
MAX_WORD = 100
_WORD = re.compile(r"\w+")


@attrs.frozen
class SearchRequest:
    term: str
    keys: tuple[str, ...]
    by_rank: bool
    event_filter: EventFilter
    rooms: frozenset[str] | None
    not_rooms: frozenset[str]
    limit: int
    context: bool
    before_limit: int
    after_limit: int
    include_profile: bool
    include_state: bool
    group_by: tuple[str, ...]

    @property
    def words(self) -> list[str]:
        """The term's words: each is matched as a prefix, all must match."""
        return words_of(self.term)[:MAX_WORDS]


def words_of(text: str) -> list[str]:
    """A text's words, lower-case (word characters only, so they are safe in either engine's query)."""
    return [word[:MAX_WORD] for word in _WORD.findall(text.lower())]


@attrs.frozen
class Batch:
    """Where the previous page stopped, and the group it was for (``next_batch`` of a group)."""

    by_rank: bool
    offset: int = 0
    before_stream: int | None = None
    group: tuple[str, str] | None = None

    def encode(self) -> str:
        body: dict[str, Any] = {"o": self.offset} if self.by_rank else {"s": self.before_stream}
        if self.group is not None:
            body["g"] = list(self.group)
        raw = json.dumps(body, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_batch(token: str, by_rank: bool) -> Batch:
    try:
        body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        raise invalid_param("Invalid next_batch token") from None
    if not isinstance(body, dict):
        raise invalid_param("Invalid next_batch token")
    group = body.get("g")
    if group is not None and not (isinstance(group, list) and len(group) == 2 and group[0] in GROUP_KEYS
                                  and isinstance(group[1], str)):
        raise invalid_param("Invalid next_batch token")
    field = "o" if by_rank else "s"
    value = body.get(field)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 2**62:
        raise invalid_param("next_batch was not made for this order_by")
    if by_rank:
        return Batch(True, offset=value, group=None if group is None else (group[0], group[1]))
    return Batch(False, before_stream=value, group=None if group is None else (group[0], group[1]))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _object(parent: dict[str, Any], name: str) -> dict[str, Any]:
    value = parent.get(name, {})
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_json(f"{name} must be an object")
    return value


def _bounded(parent: dict[str, Any], name: str, default: int, maximum: int, minimum: int = 0) -> int:
    value = parent.get(name, default)
    if not _is_int(value):
        raise bad_json(f"{name} must be an integer")
    if value < minimum:
        raise invalid_param(f"{name} must be at least {minimum}")
    return min(int(value), maximum)


def _bool(parent: dict[str, Any], name: str) -> bool:
    value = parent.get(name, False)
    if not isinstance(value, bool):
        raise bad_json(f"{name} must be a boolean")
    return value


def _room_list(parent: dict[str, Any], name: str) -> frozenset[str] | None:
    value = parent.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_json(f"filter.{name} must be a list of room IDs")
    return frozenset(value)


def _keys(criteria: dict[str, Any]) -> tuple[str, ...]:
    keys = criteria.get("keys", list(KEYS))
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise bad_json("keys must be a list of strings")
    for key in keys:
        if key not in KEYS:
            raise invalid_param(f"keys may only hold {', '.join(KEYS)}")
    return tuple(dict.fromkeys(keys)) or KEYS


def _group_by(criteria: dict[str, Any]) -> tuple[str, ...]:
    groupings = _object(criteria, "groupings")
    group_by = groupings.get("group_by", [])
    if not isinstance(group_by, list) or not all(isinstance(g, dict) for g in group_by):
        raise bad_json("groupings.group_by must be a list of objects")
    keys = []
    for group in group_by:
        key = group.get("key")
        if not isinstance(key, str):
            raise bad_json("groupings.group_by[].key must be a string")
        if key not in GROUP_KEYS:
            raise invalid_param("groupings may be by room_id or sender")
        keys.append(key)
    return tuple(dict.fromkeys(keys))


def parse_search_request(body: dict[str, Any]) -> SearchRequest | None:
    """The room_events criteria, or None when the body asks for no category we know."""
    if "search_categories" not in body:
        raise missing_param("search_categories")
    categories = body["search_categories"]
    if not isinstance(categories, dict):
        raise bad_json("search_categories must be an object")
    if categories.get("room_events") is None:
        return None
    criteria = _object(categories, "room_events")
    if "search_term" not in criteria:
        raise missing_param("search_term")
    term = criteria["search_term"]
    if not isinstance(term, str):
        raise bad_json("search_term must be a string")
    order_by = criteria.get("order_by", "rank")
    if not isinstance(order_by, str):
        raise bad_json("order_by must be a string")
    if order_by not in ("rank", "recent"):
        raise invalid_param("order_by must be rank or recent")
    raw_filter = _object(criteria, "filter")
    room_filter = parse_room_event_filter(raw_filter)
    context = criteria.get("event_context")
    context_body = _object(criteria, "event_context")
    return SearchRequest(
        term=term, keys=_keys(criteria), by_rank=order_by == "rank", event_filter=room_filter.event_filter,
        rooms=_room_list(raw_filter, "rooms"), not_rooms=_room_list(raw_filter, "not_rooms") or frozenset(),
        limit=min(room_filter.limit or DEFAULT_LIMIT, MAX_LIMIT), context=context is not None,
        before_limit=_bounded(context_body, "before_limit", DEFAULT_CONTEXT, MAX_CONTEXT),
        after_limit=_bounded(context_body, "after_limit", DEFAULT_CONTEXT, MAX_CONTEXT),
        include_profile=_bool(context_body, "include_profile"), include_state=_bool(criteria, "include_state"),
        group_by=_group_by(criteria),
    )
