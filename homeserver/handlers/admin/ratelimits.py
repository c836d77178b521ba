"""Per-user message rate limits (Synapse's ``/_synapse/admin/v1/users/{user_id}/override_ratelimit``).

An override replaces ``rc_message`` for one sender: ``messages_per_second`` and
``burst_count``, both 0 for no limit. Stored, and loaded into the limiter at start-up.
"""

from __future__ import annotations

from typing import Any

from homeserver.errors import invalid_param
from homeserver.handlers.admin.users import AdminUsersHandler
from homeserver.handlers.ratelimit import RateLimiters
from homeserver.server import Server
from storage.stores.ratelimit_overrides import RatelimitOverrideStore


class RatelimitOverrides:
    def __init__(self, hs: Server) -> None:
        self.store = hs.get(RatelimitOverrideStore)
        self.limiter = hs.get(RateLimiters).message
        self.users = hs.get(AdminUsersHandler)
        self._loaded: dict[str, tuple[int, int]] = {}

    async def load(self) -> None:
        """At start-up: every stored override into the message limiter."""
        self._loaded = await self.store.all_overrides()
        for user_id, (rate, burst) in self._loaded.items():
            self.limiter.overrides[user_id] = (float(rate), float(burst))

    async def get(self, user_id: str) -> dict[str, Any]:
        await self.users.get_existing(user_id)
        found = self._loaded.get(user_id)
        return {} if found is None else {"messages_per_second": found[0], "burst_count": found[1]}

    async def set(self, user_id: str, per_second: int, burst_count: int) -> dict[str, Any]:
        await self.users.get_existing(user_id)
        if per_second < 0 or burst_count < 0:
            raise invalid_param("messages_per_second and burst_count must be non-negative integers")
        await self.store.set_override(user_id, per_second, burst_count)
        self._loaded[user_id] = (per_second, burst_count)
        self.limiter.overrides[user_id] = (float(per_second), float(burst_count))
        return {"messages_per_second": per_second, "burst_count": burst_count}

    async def delete(self, user_id: str) -> None:
        await self.users.get_existing(user_id)
        await self.store.delete_override(user_id)
        self._loaded.pop(user_id, None)
        self.limiter.overrides.pop(user_id, None)
