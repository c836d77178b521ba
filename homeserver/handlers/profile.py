"""Global profiles (display name, avatar) of local users.

Other areas react to changes (rooms: new member events) with
``hs.get(ProfileHandler).on_profile_changed.append(async_fn)`` —
``async_fn(user_id, profile)`` after the new profile is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from homeserver.handlers.auth import Requester
from homeserver.http.errors import bad_json, forbidden, not_found
from storage.stores.profiles import Profile, ProfileStore
from storage.stores.users import UserStore

logger = logging.getLogger(__name__)

MAX_DISPLAYNAME_LENGTH = 256
MAX_AVATAR_URL_LENGTH = 1000
PROFILE_FIELDS = ("displayname", "avatar_url")

ProfileHook = Callable[[str, Profile], Awaitable[None]]


def profile_json(profile: Profile) -> dict[str, Any]:
    """Profile fields that are set (unset ones are omitted, as the spec's examples do)."""
    body: dict[str, Any] = {}
    if profile.displayname is not None:
        body["displayname"] = profile.displayname
    if profile.avatar_url is not None:
        body["avatar_url"] = profile.avatar_url
    return body


class ProfileHandler:
    def __init__(self, hs: Any) -> None:
        self.store = hs.get(ProfileStore)
        self.users = hs.get(UserStore)
        self.on_profile_changed: list[ProfileHook] = []

    async def get_profile(self, user_id: str) -> Profile:
        """The profile of a known, active local user; M_NOT_FOUND otherwise."""
        user = await self.users.get_user(user_id)
        profile = await self.store.get_profile(user_id) if user is not None else None
        if profile is None or user is None or user.deactivated:
            raise not_found("Profile was not found")
        return profile

    async def set_field(self, requester: Requester, user_id: str, field: str, value: str | None) -> None:
        """Set displayname or avatar_url: only on your own profile (admins may set anyone's)."""
        if user_id != requester.user_id and not requester.is_admin:
            raise forbidden("You may only change your own profile")
        if requester.is_guest and field == "avatar_url":
            raise forbidden("Guests may not set an avatar")
        limit = MAX_DISPLAYNAME_LENGTH if field == "displayname" else MAX_AVATAR_URL_LENGTH
        if value is not None and len(value) > limit:
            raise bad_json(f"{field} may not be longer than {limit} characters")
        await self.get_profile(user_id)
        if field == "displayname":
            await self.store.set_displayname(user_id, value)
        else:
            await self.store.set_avatar_url(user_id, value)
        await self._changed(user_id)

    async def clear_profile(self, user_id: str) -> None:
        await self.store.set_displayname(user_id, None)
        await self.store.set_avatar_url(user_id, None)

    async def _changed(self, user_id: str) -> None:
        profile = await self.store.get_profile(user_id)
        if profile is None:
            return
        for hook in list(self.on_profile_changed):
            try:
                await hook(user_id, profile)
            except Exception:
                logger.exception("profile hook %r failed for %s", hook, user_id)
