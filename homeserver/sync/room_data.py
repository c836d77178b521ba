"""Small helpers sync uses to read and format room events for one viewer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from homeserver.handlers.rooms.event_format import EventFormatter
from homeserver.handlers.rooms.visibility import filter_events_for_client
from homeserver.server import Server
from storage.stores.events import StoredEvent

# State a client sees about a room it is invited to or knocking on (spec: stripped state).
STRIPPED_STATE_TYPES = (
    "m.room.create", "m.room.name", "m.room.avatar", "m.room.topic", "m.room.join_rules",
    "m.room.canonical_alias", "m.room.encryption",
)


@attrs.frozen
class Formatter:
    """Who events are formatted for (transaction_id shows only to the sending device)."""

    user_id: str
    device_id: str | None
    access_token_id: int | None


async def format_events(hs: Server, events: Sequence[StoredEvent], who: Formatter) -> list[dict[str, Any]]:
    return await hs.get(EventFormatter).format_events(events, who)


async def visible_to(hs: Server, user_id: str, events: list[StoredEvent]) -> list[StoredEvent]:
    """History visibility: drop what the user may not see (shared per state group when the
    user was joined: sync's readers of a new event are mostly its room's members)."""
    return list(await filter_events_for_client(hs, user_id, events, by_group=True))


def prev_batch_token(position: int) -> str:
    """A /messages ``from`` token that pages backwards from just before ``position``."""
    return f"s{position}"


def stripped(event: StoredEvent) -> dict[str, Any]:
    e = event.event
    return {"type": e.type, "state_key": e.state_key, "content": e.content, "sender": e.sender}
