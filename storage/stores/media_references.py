"""Where media is referenced: events in a room, avatars in profiles and room state.

Read-only queries over tables other stores write (events, current state, profiles), kept
here so the media admin tools have one place to ask "what points at this mxc:// URI?".
Encrypted events are opaque, so media they carry is never found.
"""

from __future__ import annotations

import json
from typing import Any

from storage.engine import Transaction
from storage.host import StorageHost

# contains_url marks events whose content has a string "url" (m.image, m.file...).
ROOM_EVENTS_WITH_URLS = (
    "SELECT json FROM events WHERE room_id = ? AND contains_url = 1 AND redacted_by IS NULL"
)
PROFILE_AVATARS = "SELECT avatar_url FROM profiles WHERE avatar_url IS NOT NULL AND SUBSTR(avatar_url, 1, ?) = ?"
# Room avatars, and per-room member avatars, in the current state of every room.
CURRENT_AVATAR_EVENTS = (
    "SELECT e.json FROM current_state_events c JOIN events e ON e.event_id = c.event_id"
    " WHERE (c.type = 'm.room.avatar' OR c.type = 'm.room.member') AND e.json LIKE '%mxc:/%'"
)


def _content(raw: str) -> dict[str, Any]:
    try:
        content = json.loads(raw).get("content")
    except (ValueError, AttributeError):
        return {}
    return content if isinstance(content, dict) else {}


def _urls_of(content: dict[str, Any], *paths: tuple[str, ...]) -> list[str]:
    found = []
    for path in paths:
        value: Any = content
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str) and value.startswith("mxc://"):
            found.append(value)
    return found


class MediaReferenceStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def mxc_uris_in_room(self, room_id: str) -> set[str]:
        """Every mxc:// URI an unencrypted, unredacted event in the room carries (file and thumbnail)."""
        rows = await self.db.execute("mxc_uris_in_room", ROOM_EVENTS_WITH_URLS, room_id)
        uris: set[str] = set()
        for (raw,) in rows:
            uris.update(_urls_of(_content(raw), ("url",), ("info", "thumbnail_url")))
        return uris

    async def avatar_uris(self, prefix: str) -> set[str]:
        """mxc:// URIs starting with ``prefix`` in use as user or room avatars."""
        def read(txn: Transaction) -> set[str]:
            txn.execute(PROFILE_AVATARS, (len(prefix), prefix))
            uris = {row[0] for row in txn.fetchall()}
            txn.execute(CURRENT_AVATAR_EVENTS)
            for (raw,) in txn.fetchall():
                uris.update(_urls_of(_content(raw), ("url",), ("avatar_url",)))
            return {uri for uri in uris if uri.startswith(prefix)}

        return await self.db.run_interaction("media_avatar_uris", read)
