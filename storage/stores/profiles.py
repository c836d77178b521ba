"""The ``profiles`` table: local users' display names and avatars."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from storage.engine import Transaction

INSERT_PROFILE = (
    "INSERT INTO profiles (user_id, displayname, avatar_url) VALUES (?, ?, NULL)"
    " ON CONFLICT (user_id) DO NOTHING"
)
SELECT_PROFILE = "SELECT user_id, displayname, avatar_url FROM profiles WHERE user_id = ?"
UPDATE_DISPLAYNAME = "UPDATE profiles SET displayname = ? WHERE user_id = ?"
UPDATE_AVATAR_URL = "UPDATE profiles SET avatar_url = ? WHERE user_id = ?"
# Search is a case-insensitive substring match on the user id and the display name,
# among a given set of users (those visible to the searcher), in batches.
SEARCH_PROFILES_AMONG = (
    "SELECT p.user_id, p.displayname, p.avatar_url FROM profiles p"
    " JOIN users u ON u.user_id = p.user_id"
    " WHERE u.deactivated = 0 AND p.user_id IN ({placeholders})"
    " AND (LOWER(p.user_id) LIKE ? ESCAPE '!' OR LOWER(p.displayname) LIKE ? ESCAPE '!')"
)
SEARCH_BATCH = 500


@attrs.frozen
class Profile:
    user_id: str
    displayname: str | None
    avatar_url: str | None


def like_pattern(term: str) -> str:
    escaped = term.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


class ProfileStore:
    def __init__(self, hs: Any) -> None:
        self.db = hs.db

    async def create_profile(self, user_id: str, displayname: str | None) -> None:
        await self.db.execute("create_profile", INSERT_PROFILE, user_id, displayname)

    async def get_profile(self, user_id: str) -> Profile | None:
        rows = await self.db.execute("get_profile", SELECT_PROFILE, user_id)
        return Profile(*rows[0]) if rows else None

    async def set_displayname(self, user_id: str, displayname: str | None) -> None:
        await self.db.execute("set_displayname", UPDATE_DISPLAYNAME, displayname, user_id)

    async def set_avatar_url(self, user_id: str, avatar_url: str | None) -> None:
        await self.db.execute("set_avatar_url", UPDATE_AVATAR_URL, avatar_url, user_id)

    async def search_among(self, user_ids: Iterable[str], term: str, limit: int) -> list[Profile]:
        """Up to ``limit`` active users from ``user_ids`` whose id or name contains ``term``."""
        ids = sorted(set(user_ids))
        pattern = like_pattern(term)

        def search(txn: Transaction) -> list[Profile]:
            found: list[Profile] = []
            for start in range(0, len(ids), SEARCH_BATCH):
                batch = ids[start:start + SEARCH_BATCH]
                sql = SEARCH_PROFILES_AMONG.format(placeholders=", ".join("?" * len(batch)))
                txn.execute(sql, (*batch, pattern, pattern))
                found.extend(Profile(*row) for row in txn.fetchall())
            found.sort(key=lambda profile: profile.user_id)
            return found[:limit]

        return await self.db.run_interaction("search_profiles", search)
