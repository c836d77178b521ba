"""The immutable in-memory view of a PDU, shared by auth rules and state resolution.

It wraps the wire JSON untouched (so it can be re-served and re-hashed byte for byte)
and exposes normalised accessors that hide the v1/v2 vs v3+ PDU format differences.
Construction is lenient: fixtures and partially-formed events are accepted, and
`pdu_format.check_pdu_format` is where strict structural validation happens.
"""

from __future__ import annotations

from typing import Any

import attrs

from homeserver.events.hashing import compute_event_id, room_id_for_create_event_id
from homeserver.events.room_versions import RoomVersion


class InvalidEventError(ValueError):
    """The PDU cannot be turned into an Event (e.g. a v1/v2 PDU with no event_id)."""


def _ids_from_refs(refs: Any) -> list[str]:
    """Normalise `[[id, {hashes}], ...]` (v1/v2) or `[id, ...]` (v3+) to a list of IDs."""
    if not isinstance(refs, list):
        return []
    ids: list[str] = []
    for ref in refs:
        if isinstance(ref, str):
            ids.append(ref)
        elif isinstance(ref, list | tuple) and ref and isinstance(ref[0], str):
            ids.append(ref[0])
    return ids


@attrs.frozen(slots=True, eq=False)
class Event:
    """A PDU plus its (computed or carried) event ID and room version.

    Equality and hashing are by event ID, so events can live in sets and dict keys.
    """

    pdu: dict[str, Any]
    event_id: str
    room_version: RoomVersion

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return self.event_id == other.event_id

    def __hash__(self) -> int:
        return hash(self.event_id)

    def __repr__(self) -> str:
        return f"<Event {self.event_id} {self.type} state_key={self.state_key!r}>"

    @classmethod
    def from_pdu(
        cls, pdu: dict[str, Any], room_version: RoomVersion, event_id: str | None = None
    ) -> Event:
        """Wrap a PDU, computing its event ID from the reference hash in v3+.

        For v1/v2 the ID comes from `pdu["event_id"]` unless given. The PDU dict is
        not copied: callers must not mutate it afterwards.
        """
        if event_id is None:
            if room_version.event_id_carried_in_pdu:
                carried = pdu.get("event_id")
                if not isinstance(carried, str):
                    raise InvalidEventError("v1/v2 PDU without a string event_id")
                event_id = carried
            else:
                event_id = compute_event_id(pdu, room_version)
        return cls(pdu=pdu, event_id=event_id, room_version=room_version)

    @property
    def type(self) -> str:
        return self.pdu.get("type", "")

    @property
    def state_key(self) -> str | None:
        state_key = self.pdu.get("state_key")
        return state_key if isinstance(state_key, str) else None

    def is_state(self) -> bool:
        return self.state_key is not None

    @property
    def sender(self) -> str:
        return self.pdu.get("sender", "")

    @property
    def room_id(self) -> str:
        room_id = self.pdu.get("room_id")
        if isinstance(room_id, str):
            return room_id
        if (
            self.room_version.room_id_is_create_event_hash
            and self.type == "m.room.create"
            and self.state_key == ""
        ):
            return room_id_for_create_event_id(self.event_id)
        return ""

    @property
    def content(self) -> dict[str, Any]:
        content = self.pdu.get("content")
        return content if isinstance(content, dict) else {}

    @property
    def depth(self) -> int:
        depth = self.pdu.get("depth", 0)
        return depth if isinstance(depth, int) else 0

    @property
    def origin_server_ts(self) -> int:
        ts = self.pdu.get("origin_server_ts", 0)
        return ts if isinstance(ts, int) else 0

    @property
    def prev_event_ids(self) -> list[str]:
        return _ids_from_refs(self.pdu.get("prev_events"))

    @property
    def auth_event_ids(self) -> list[str]:
        return _ids_from_refs(self.pdu.get("auth_events"))

    @property
    def redacts(self) -> str | None:
        """The redacted event's ID: in content from v11, top-level before."""
        if self.type != "m.room.redaction":
            return None
        if self.room_version.redacts_in_content:
            redacts = self.content.get("redacts")
        else:
            redacts = self.pdu.get("redacts")
        return redacts if isinstance(redacts, str) else None

    @property
    def membership(self) -> str | None:
        if self.type != "m.room.member":
            return None
        membership = self.content.get("membership")
        return membership if isinstance(membership, str) else None
