"""Profiles of local users: displayname, avatar_url and extended fields (spec v1.16).

Other areas react to changes (rooms: new member events) with
``hs.get(ProfileHandler).on_profile_changed.append(async_fn)`` —
``async_fn(user_id, profile)`` after the new profile is stored.

Changes count against ``rc_profile`` (per user making them), since each one
sends a new member event into every room the user is in.  Lookups need a token
with ``require_auth_for_profile_requests``, and with
``limit_profile_requests_to_users_who_share_rooms`` too, only people sharing a
room with the target (or the target) may look, as in Synapse.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from homeserver.errors import MatrixError, bad_json, forbidden, invalid_param, not_found
from homeserver.handlers.accounts.auth import Requester
from homeserver.handlers.accounts.restrictions import check_not_suspended
from homeserver.handlers.ratelimit import RateLimiters
from homeserver.handlers.rooms.members import joined_rooms
from homeserver.handlers.validation import check_storable_text
from homeserver.server import Server
from storage.stores.profiles import Profile, ProfileStore
from storage.stores.users import UserStore

logger = logging.getLogger(__name__)

MAX_DISPLAYNAME_LENGTH = 256
MAX_AVATAR_URL_LENGTH = 1000
MAX_KEY_BYTES = 255
MAX_PROFILE_BYTES = 64 * 1024
# The spec's keyName grammar: the two classic fields, m.tz, or a namespaced custom key.
KEY_PATTERN = re.compile(r"^(avatar_url|displayname|m\.tz|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+)$")
STRING_FIELDS = {"displayname": MAX_DISPLAYNAME_LENGTH, "avatar_url": MAX_AVATAR_URL_LENGTH, "m.tz": 255}

ProfileHook = Callable[[str, Profile], Awaitable[None]]


def check_key(key: str) -> None:
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise MatrixError(400, "M_KEY_TOO_LARGE", f"Profile keys may not exceed {MAX_KEY_BYTES} bytes")
    if not KEY_PATTERN.match(key):
        raise invalid_param("Invalid profile key")


def check_value(key: str, value: Any) -> None:
    limit = STRING_FIELDS.get(key)
    if limit is None:
        return
    if key == "m.tz" and value is None:
        raise bad_json("m.tz must be a string")
    if value is not None and not isinstance(value, str):
        raise bad_json(f"{key} must be a string")
    if value is not None and len(value) > limit:
        raise bad_json(f"{key} may not be longer than {limit} characters")
    check_storable_text(key, value)


class ProfileHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.store = hs.get(ProfileStore)
        self.users = hs.get(UserStore)
        self.limiter = hs.get(RateLimiters).profile
        self.shared_rooms_only: bool = (hs.config.require_auth_for_profile_requests
                                        and hs.config.limit_profile_requests_to_users_who_share_rooms)
        self.on_profile_changed: list[ProfileHook] = []

    async def get_profile(self, user_id: str, requester_id: str | None = None) -> Profile:
        """The profile of a known, active local user; M_NOT_FOUND otherwise.

        ``requester_id`` is who asks over the client API (None: another area asks).
        """
        if requester_id is not None and requester_id != user_id and self.shared_rooms_only:
            if not await joined_rooms(self.hs, requester_id) & await joined_rooms(self.hs, user_id):
                raise forbidden("Profile isn't available")
        user = await self.users.get_user(user_id)
        profile = await self.store.get_profile(user_id) if user is not None else None
        if profile is None or user is None or user.deactivated:
            raise not_found("Profile was not found")
        return profile

    async def get_field(self, user_id: str, key: str, requester_id: str | None = None) -> Any:
        check_key(key)
        fields = (await self.get_profile(user_id, requester_id)).to_json()
        if key not in fields:
            raise not_found("Profile field not set")
        return fields[key]

    def _check_may_change(self, requester: Requester, user_id: str, key: str) -> None:
        if user_id != requester.user_id and not requester.is_admin:
            raise forbidden("You may only change your own profile")
        if requester.is_guest and key != "displayname":
            raise forbidden("Guests may only set a display name")

    async def set_field(self, requester: Requester, user_id: str, key: str, value: Any) -> None:
        """Set one field of your own profile (admins may set anyone's)."""
        await check_not_suspended(self.hs, requester.user_id)
        check_key(key)
        self._check_may_change(requester, user_id, key)
        check_value(key, value)
        current = (await self.get_profile(user_id)).to_json()
        current[key] = value
        if len(json.dumps(current, ensure_ascii=False).encode("utf-8")) > MAX_PROFILE_BYTES:
            raise MatrixError(400, "M_PROFILE_TOO_LARGE", f"Profiles may not exceed {MAX_PROFILE_BYTES} bytes")
        self.limiter.ratelimit(requester.user_id)
        await self.store.set_field(user_id, key, value)
        await self._changed(user_id)

    async def delete_field(self, requester: Requester, user_id: str, key: str) -> None:
        check_key(key)
        self._check_may_change(requester, user_id, key)
        await self.get_profile(user_id)
        self.limiter.ratelimit(requester.user_id)
        await self.store.delete_field(user_id, key)
        await self._changed(user_id)

    async def clear_profile(self, user_id: str) -> None:
        await self.store.clear_profile(user_id)

    async def _changed(self, user_id: str) -> None:
        profile = await self.store.get_profile(user_id)
        if profile is None:
            return
        for hook in list(self.on_profile_changed):
            try:
                await hook(user_id, profile)
            except Exception:
                logger.exception("profile hook %r failed for %s", hook, user_id)
