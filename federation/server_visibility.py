"""What another server may see of a room's events: what its users could (Synapse's
``filter_events_for_server``).

At each event, with the history visibility as it stood there: ``world_readable`` and
``shared`` are visible to any server in the room; ``invited`` needs one of the server's users
invited or joined at that event; ``joined`` one joined. An event the server may not see is
served redacted (``redact=True``: backfill, get_missing_events, so the DAG stays whole) or
left out. Rejected events are never served; outliers (events held without their state) are
served to a server in the room, since they are auth and state events it needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from homeserver.events.identifiers import server_name_of
from homeserver.events.redaction import redact_pdu
from homeserver.server import Server
from storage.stores.events import EventStore, StoredEvent
from storage.stores.room_members import RoomMemberStore
from storage.stores.state import StateGroupStore

HISTORY_KEY = ("m.room.history_visibility", "")
OPEN = ("world_readable", "shared")


def domain_of(user_id: str) -> str:
    """The server part of a user ID, or "" for anything that is not one."""
    try:
        return server_name_of(user_id)
    except ValueError:
        return ""


def served_pdu(stored: StoredEvent) -> dict[str, Any]:
    """The PDU as we serve it: redacted if it was redacted here."""
    event = stored.event
    return redact_pdu(event.pdu, event.room_version) if stored.redacted_by else dict(event.pdu)


async def server_in_room(hs: Server, server: str, room_id: str) -> bool:
    """True when one of ``server``'s users is joined to the room now."""
    users = await hs.get(RoomMemberStore).get_users_in_room(room_id)
    return any(domain_of(user) == server for user in users)


async def filter_events_for_server(hs: Server, server: str, events: Sequence[StoredEvent], *,
                                   redact: bool) -> list[dict[str, Any]]:
    """The PDUs ``server`` may have, in the order given (see the module doc)."""
    served = []
    for stored, visible in await _visibility(hs, server, events):
        if visible:
            served.append(served_pdu(stored))
        elif redact:
            served.append(redact_pdu(stored.event.pdu, stored.event.room_version))
    return served


async def events_visible_to_server(hs: Server, server: str, events: Sequence[StoredEvent]) -> list[StoredEvent]:
    """The events ``server``'s users could see, in the order given (rejected ones never)."""
    return [stored for stored, visible in await _visibility(hs, server, events) if visible]


async def _visibility(hs: Server, server: str, events: Sequence[StoredEvent]) -> list[tuple[StoredEvent, bool]]:
    events = [s for s in events if not s.rejected]
    groups = [s.state_group for s in events if s.state_group is not None]
    states = await hs.get(StateGroupStore).get_state_ids_filtered_many(
        groups, keys=(HISTORY_KEY,), types=("m.room.member",))
    wanted: set[str] = set()
    for state in states.values():
        wanted.update(i for key, i in state.items()
                      if key == HISTORY_KEY or domain_of(key[1]) == server)
    loaded = await hs.get(EventStore).get_events(wanted)
    return [(stored, stored.state_group is None or _visible(states[stored.state_group], loaded, server))
            for stored in events]


def _visible(state: dict[tuple[str, str], str], loaded: dict[str, StoredEvent], server: str) -> bool:
    history = loaded.get(state.get(HISTORY_KEY, ""))
    visibility = history.event.content.get("history_visibility") if history is not None else "shared"
    if visibility in OPEN or visibility not in ("invited", "joined"):
        return True
    for key, event_id in state.items():
        if key[0] != "m.room.member" or domain_of(key[1]) != server:
            continue
        member = loaded.get(event_id)
        membership = member.event.membership if member is not None else None
        if membership == "join" or (visibility == "invited" and membership == "invite"):
            return True
    return False
