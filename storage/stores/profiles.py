"""Local users' profiles: ``profiles`` (displayname, avatar_url) and ``profile_fields`` (the rest)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import attrs

from storage.engine import Transaction
from storage.host import StorageHost
from storage.stores.storable import storable

INSERT_PROFILE = (
    "INSERT INTO profiles (user_id, displayname, avatar_url) VALUES (?, ?, NULL)"
    " ON CONFLICT (user_id) DO NOTHING"
)
SELECT_PROFILE = "SELECT user_id, displayname, avatar_url FROM profiles WHERE user_id = ?"
SELECT_FIELDS = "SELECT field_name, value FROM profile_fields WHERE user_id = ?"
UPDATE_DISPLAYNAME = "UPDATE profiles SET displayname = ? WHERE user_id = ?"
UPDATE_AVATAR_URL = "UPDATE profiles SET avatar_url = ? WHERE user_id = ?"
UPSERT_FIELD = (
    "INSERT INTO profile_fields (user_id, field_name, value) VALUES (?, ?, ?)"
    " ON CONFLICT (user_id, field_name) DO UPDATE SET value = excluded.value"
)
DELETE_FIELD = "DELETE FROM profile_fields WHERE user_id = ? AND field_name = ?"
DELETE_FIELDS = "DELETE FROM profile_fields WHERE user_id = ?"
CLEAR_PROFILE = "UPDATE profiles SET displayname = NULL, avatar_url = NULL WHERE user_id = ?"
# Search is a case-insensitive substring match on the user id and the display name,
# among a given set of users (those visible to the searcher), in batches.
SEARCH_PROFILES_AMONG = (
    "SELECT p.user_id, p.displayname, p.avatar_url FROM profiles p"
    " JOIN users u ON u.user_id = p.user_id"
    " WHERE u.deactivated = 0 AND p.user_id IN ({placeholders})"
    " AND (LOWER(p.user_id) LIKE ? ESCAPE '!' OR LOWER(p.displayname) LIKE ? ESCAPE '!')"
)
SEARCH_BATCH = 500
SEARCH_ALL_PROFILES = (
    "SELECT p.user_id, p.displayname, p.avatar_url FROM profiles p"
    " JOIN users u ON u.user_id = p.user_id"
    " WHERE u.deactivated = 0"
    " AND (LOWER(p.user_id) LIKE ? ESCAPE '!' OR LOWER(p.displayname) LIKE ? ESCAPE '!')"
    " ORDER BY p.user_id LIMIT ?"
)

COLUMN_FIELDS = {"displayname": UPDATE_DISPLAYNAME, "avatar_url": UPDATE_AVATAR_URL}


@attrs.frozen
class Profile:
    user_id: str
    displayname: str | None
    avatar_url: str | None
    fields: dict[str, Any] = attrs.field(factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Every field that is set (unset displayname/avatar_url are omitted)."""
        body: dict[str, Any] = dict(self.fields)
        if self.displayname is not None:
            body["displayname"] = self.displayname
        if self.avatar_url is not None:
            body["avatar_url"] = self.avatar_url
        return body


def create_profile_txn(txn: Transaction, user_id: str, displayname: str | None) -> None:
    """Insert a new user's profile inside the caller's transaction (see UserStore.create_user)."""
    txn.execute(INSERT_PROFILE, (user_id, displayname))


def like_pattern(term: str) -> str:
    escaped = term.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


class ProfileStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def get_profile(self, user_id: str) -> Profile | None:
        if not storable(user_id):
            return None

        def read(txn: Transaction) -> Profile | None:
            txn.execute(SELECT_PROFILE, (user_id,))
            row = txn.fetchone()
            if row is None:
                return None
            txn.execute(SELECT_FIELDS, (user_id,))
            fields = {name: json.loads(value) for name, value in txn.fetchall()}
            return Profile(row[0], row[1], row[2], fields)

        return await self.db.run_interaction("get_profile", read)

    async def set_field(self, user_id: str, field: str, value: Any) -> None:
        """displayname/avatar_url go to their columns (None unsets); others are stored as JSON."""
        if field in COLUMN_FIELDS:
            await self.db.execute("set_profile_column", COLUMN_FIELDS[field], value, user_id)
        else:
            encoded = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
            await self.db.execute("set_profile_field", UPSERT_FIELD, user_id, field, encoded)

    async def delete_field(self, user_id: str, field: str) -> None:
        if field in COLUMN_FIELDS:
            await self.db.execute("unset_profile_column", COLUMN_FIELDS[field], None, user_id)
        else:
            await self.db.execute("delete_profile_field", DELETE_FIELD, user_id, field)

    async def clear_profile(self, user_id: str) -> None:
        def clear(txn: Transaction) -> None:
            txn.execute(CLEAR_PROFILE, (user_id,))
            txn.execute(DELETE_FIELDS, (user_id,))

        await self.db.run_interaction("clear_profile", clear)

    async def search_among(self, user_ids: Iterable[str], term: str, limit: int) -> list[Profile]:
        """Up to ``limit`` active users from ``user_ids`` whose id or name contains ``term``."""
        if not storable(term):
            return []
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

    async def search_all(self, term: str, limit: int) -> list[Profile]:
        """Up to ``limit`` active users whose id or name contains ``term``, by user id."""
        if not storable(term):
            return []
        pattern = like_pattern(term)
        rows = await self.db.execute("search_all_profiles", SEARCH_ALL_PROFILES, pattern, pattern, limit)
        return [Profile(*row) for row in rows]
