"""The ``profiles`` table: local users' display names and avatars."""

from __future__ import annotations

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
# Search is a case-insensitive substring match on the user id and the display name.
SEARCH_PROFILES = (
    "SELECT p.user_id, p.displayname, p.avatar_url FROM profiles p"
    " JOIN users u ON u.user_id = p.user_id"
    " WHERE u.deactivated = 0 AND (LOWER(p.user_id) LIKE ? ESCAPE '!' OR LOWER(p.displayname) LIKE ? ESCAPE '!')"
    " ORDER BY p.user_id"
)


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

    async def search(self, term: str) -> list[Profile]:
        """Active users whose id or display name contains ``term`` (case-insensitively)."""

        def search(txn: Transaction) -> list[Profile]:
            pattern = like_pattern(term)
            txn.execute(SEARCH_PROFILES, (pattern, pattern))
            return [Profile(*row) for row in txn.fetchall()]

        return await self.db.run_interaction("search_profiles", search)
