"""Changing a password and deactivating an account.

Deactivation empties the account (devices, tokens, profile) and marks it so it can
never log in again; other areas (rooms: leave every room) hook in with
``hs.get(AccountHandler).on_user_deactivated.append(async_fn)`` — ``async_fn(user_id)``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from homeserver.handlers.accounts.auth import Requester
from homeserver.handlers.accounts.devices import DeviceHandler
from homeserver.handlers.accounts.passwords import PasswordHasher
from homeserver.handlers.accounts.profile import ProfileHandler
from homeserver.handlers.accounts.registration import check_password_length
from homeserver.server import Server
from storage.stores.access_tokens import AccessTokenStore
from storage.stores.users import UserStore

logger = logging.getLogger(__name__)

UserHook = Callable[[str], Awaitable[None]]


class AccountHandler:
    def __init__(self, hs: Server) -> None:
        self.users = hs.get(UserStore)
        self.tokens = hs.get(AccessTokenStore)
        self.devices = hs.get(DeviceHandler)
        self.passwords = hs.get(PasswordHasher)
        self.profiles = hs.get(ProfileHandler)
        self.on_user_deactivated: list[UserHook] = []

    async def change_password(self, requester: Requester, new_password: str, logout_devices: bool) -> None:
        """Set a new password; optionally log out every other device and token."""
        check_password_length(new_password)
        await self.users.set_password_hash(requester.user_id, await self.passwords.hash(new_password))
        if logout_devices:
            await self.devices.delete_all_devices(requester.user_id, except_device_id=requester.device_id)
            await self.tokens.delete_user_tokens(requester.user_id, except_token_id=requester.access_token_id)

    async def deactivate(self, user_id: str) -> None:
        """Mark the account deactivated first, so no new login can slip in, then empty it."""
        await self.users.set_deactivated(user_id, True)
        self.tokens.invalidate_user(user_id)
        await self.devices.delete_all_devices(user_id)
        await self.tokens.delete_user_tokens(user_id)
        await self.profiles.clear_profile(user_id)
        for hook in list(self.on_user_deactivated):
            try:
                await hook(user_id)
            except Exception:
                logger.exception("deactivation hook %r failed for %s", hook, user_id)
