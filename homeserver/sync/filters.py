"""Saved sync filters (POST/GET /user/{userId}/filter) and resolving ?filter= on /sync."""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError, forbidden, invalid_param, not_found
from homeserver.server import Server
from homeserver.sync.filtering import validate_filter
from storage.stores.filters import FilterStore

MAX_VALIDATED = 1_000


class FilterHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.store: FilterStore = hs.get(FilterStore)
        #: id -> inline filters already validated: the HTTP edge hands a long-poll's repeated
        #: filter text back as the same object (http/request.py query_filter).
        self._valid: dict[int, dict[str, Any]] = {}

    def _check_owner(self, requester_user: str, user_id: str) -> None:
        if requester_user != user_id:
            raise forbidden("Cannot use filters for other users")
        if not user_id.endswith(":" + self.hs.server_name):
            raise MatrixError(400, "M_UNKNOWN", "Can only use filters for local users")

    async def create(self, requester_user: str, user_id: str, body: dict[str, Any]) -> str:
        self._check_owner(requester_user, user_id)
        return str(await self.store.add_filter(user_id, validate_filter(body)))

    async def get(self, requester_user: str, user_id: str, filter_id: str) -> dict[str, Any]:
        self._check_owner(requester_user, user_id)
        if not filter_id.isdigit() or len(filter_id) > 18:
            raise not_found("No such filter")
        found = await self.store.get_filter(user_id, int(filter_id))
        if found is None:
            raise not_found("No such filter")
        return found

    async def resolve(self, user_id: str, given: str | dict[str, Any] | None) -> dict[str, Any]:
        """The filter /sync was given: inline (already decoded at the HTTP edge) or a saved filter id."""
        if given is None or given == "":
            return {}
        if isinstance(given, dict):
            if self._valid.get(id(given)) is given:
                return given
            validate_filter(given)
            if len(self._valid) >= MAX_VALIDATED:
                self._valid.clear()
            self._valid[id(given)] = given
            return given
        text = given
        if not text.isdigit() or len(text) > 18:
            raise invalid_param("filter must be a filter id or a JSON object")
        found = await self.store.get_filter(user_id, int(text))
        if found is None:
            raise MatrixError(400, "M_INVALID_PARAM", "No such filter")
        return found
