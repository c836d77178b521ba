"""Stripped state: what a user invited to, or knocking on, a room it is not in is shown of
it (``invite_room_state``, ``knock_room_state``), as we send it and as we keep what peers send."""

from __future__ import annotations

from typing import Any

from homeserver.handlers.rooms.room_state import RoomStateHandler
from homeserver.server import Server
from storage.stores.events import EventStore

#: What the invitee (or knocker) is shown of a room it is not in (the spec's recommendation).
STRIPPED_STATE_TYPES = (
    "m.room.create", "m.room.name", "m.room.avatar", "m.room.topic", "m.room.join_rules",
    "m.room.canonical_alias", "m.room.encryption",
)
#: Most stripped state events kept from an inviting server.
MAX_STRIPPED = 50


def sanitise_stripped_state(value: Any) -> list[dict[str, Any]]:
    """The well-formed stripped events of what a peer sent (others dropped), at most MAX_STRIPPED."""
    if not isinstance(value, list):
        return []
    kept: list[dict[str, Any]] = []
    for item in value:
        if not isinstance(item, dict):
            continue
        fields = {k: item.get(k) for k in ("type", "state_key", "content", "sender")}
        if isinstance(fields["type"], str) and isinstance(fields["state_key"], str) \
                and isinstance(fields["content"], dict) and isinstance(fields["sender"], str):
            kept.append(fields)
        if len(kept) >= MAX_STRIPPED:
            break
    return kept


async def stripped_room_state(hs: Server, room_id: str, extra: tuple[tuple[str, str], ...] = ()) -> list[dict[str, Any]]:
    """The room's current state of STRIPPED_STATE_TYPES (and ``extra`` keys), stripped."""
    state = hs.get(RoomStateHandler)
    current = await state.get_current_state_ids(room_id)
    wanted = [current[(t, "")] for t in STRIPPED_STATE_TYPES if (t, "") in current]
    wanted += [current[key] for key in extra if key in current]
    loaded = await hs.get(EventStore).get_events(wanted)
    return [{"type": s.event.type, "state_key": s.event.state_key, "content": s.event.content,
             "sender": s.event.sender} for i in wanted if (s := loaded.get(i)) is not None]
