"""Profiles of users on other servers, asked for over federation (``/query/profile``)."""

from __future__ import annotations

import logging
from typing import Any

from federation.transport.client import (
    FederationClient,
    FederationDeniedError,
    FederationRequestError,
)
from homeserver.errors import MatrixError, forbidden, not_found
from homeserver.events.identifiers import is_valid_user_id, server_name_of
from homeserver.server import Server

logger = logging.getLogger(__name__)

PROFILE_QUERY_PATH = "/_matrix/federation/v1/query/profile"
MAX_PROFILE_BYTES = 64 * 1024


class RemoteProfiles:
    """The client API's profile routes come here for users of other servers (``is_remote``)."""

    def __init__(self, hs: Server) -> None:
        self.server_name: str = hs.server_name
        self.client = hs.get(FederationClient)

    def is_remote(self, user_id: str) -> bool:
        return is_valid_user_id(user_id) and server_name_of(user_id) != self.server_name

    async def get_field(self, user_id: str, field: str) -> Any:
        fields = await self.get_profile(user_id, field)
        if field not in fields:
            raise not_found("Profile field not set")
        return fields[field]

    async def get_profile(self, user_id: str, field: str | None = None) -> dict[str, Any]:
        """The remote server's answer; 404/403 pass through, anything else is 502."""
        args = {"user_id": user_id} if field is None else {"user_id": user_id, "field": field}
        try:
            body = await self.client.get_json(server_name_of(user_id), PROFILE_QUERY_PATH, args,
                                              max_response_bytes=MAX_PROFILE_BYTES)
        except FederationDeniedError:
            raise forbidden("Federation with the user's server is not allowed") from None
        except FederationRequestError as exc:
            if exc.code == 404:
                raise not_found("Profile was not found") from None
            if exc.code == 403:
                raise forbidden("The user's server will not share this profile") from None
            logger.info("Profile query for %s failed: %s", user_id, exc)
            raise MatrixError(502, "M_UNKNOWN", "Failed to fetch the profile from the user's server") from None
        if not isinstance(body, dict):
            raise MatrixError(502, "M_UNKNOWN", "The user's server sent a malformed profile")
        return {key: value for key, value in body.items() if value is not None}
