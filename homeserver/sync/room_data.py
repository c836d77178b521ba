"""What sync reads from the rooms and accounts areas, behind one small seam.

Their stores and helpers land in parallel; everything sync needs from them
goes through here, so a change on their side is a change in one file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

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


async def event_room(hs: Any, event_id: str) -> str | None:
    from storage.stores.sync_events import SyncEventsStore

    found = await hs.get(SyncEventsStore).event_position(event_id)
    return None if found is None else found[1]


async def format_events(hs: Any, events: Sequence[StoredEvent], who: Formatter) -> list[dict[str, Any]]:
    from homeserver.handlers.rooms.event_format import EventFormatter

    return await hs.get(EventFormatter).format_events(events, who)


async def visible_to(hs: Any, user_id: str, events: list[StoredEvent]) -> list[StoredEvent]:
    """History visibility: drop what the user may not see."""
    try:
        from homeserver.handlers.rooms.visibility import filter_events_for_client
    except ImportError:  # the rooms area has not landed it yet: joined users see the room
        return events
    return list(await filter_events_for_client(hs, user_id, events))


def prev_batch_token(position: int) -> str:
    """A /messages ``from`` token that pages backwards from just before ``position``."""
    return f"s{position}"


def stripped(event: StoredEvent) -> dict[str, Any]:
    e = event.event
    return {"type": e.type, "state_key": e.state_key, "content": e.content, "sender": e.sender}


async def set_room_account_data(hs: Any, user_id: str, room_id: str, data_type: str,
                                content: dict[str, Any]) -> None:
    from storage.stores.account_data import AccountDataStore

    # Straight to the store: the account-data API refuses m.fully_read from clients,
    # but the read-marker path is exactly where it is meant to be set.
    await hs.get(AccountDataStore).put_account_data(user_id, room_id, data_type, content)


async def send_message(hs: Any, requester: Any, room_id: str, event_type: str, txn_id: str,
                       content: dict[str, Any]) -> str:
    """Send as PUT /rooms/{roomId}/send/{eventType}/{txnId} does (same idempotency)."""
    from homeserver.handlers.rooms.message_send import EventSendHandler

    return await hs.get(EventSendHandler).send_event(requester, room_id, event_type, content,
                                                     txn_id=txn_id)
