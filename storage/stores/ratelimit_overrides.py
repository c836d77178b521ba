"""``ratelimit_overrides``: per-user message rate limits set through the admin API."""

from __future__ import annotations

from storage.host import StorageHost

_ALL = "SELECT user_id, messages_per_second, burst_count FROM ratelimit_overrides"
_SET = (
    "INSERT INTO ratelimit_overrides (user_id, messages_per_second, burst_count) VALUES (?, ?, ?)"
    " ON CONFLICT (user_id) DO UPDATE SET messages_per_second = excluded.messages_per_second,"
    " burst_count = excluded.burst_count"
)
_DELETE = "DELETE FROM ratelimit_overrides WHERE user_id = ?"


class RatelimitOverrideStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def all_overrides(self) -> dict[str, tuple[int, int]]:
        rows = await self.db.execute("ratelimit_overrides", _ALL)
        return {row[0]: (int(row[1]), int(row[2])) for row in rows}

    async def set_override(self, user_id: str, per_second: int, burst_count: int) -> None:
        await self.db.execute("set_ratelimit_override", _SET, user_id, per_second, burst_count)

    async def delete_override(self, user_id: str) -> None:
        await self.db.execute("delete_ratelimit_override", _DELETE, user_id)
