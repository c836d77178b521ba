"""Creating accounts: the client /register flow (with UIA) and operator registration.

Other areas act on new accounts (rooms: auto_join_rooms) with
``hs.get(RegistrationHandler).on_registered.append(async_fn)``:
``async_fn(user_id, is_guest)`` runs after the account exists, before the
registration is answered; a failing hook is logged and the account stands.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from homeserver.errors import MatrixError, bad_json, forbidden
from homeserver.handlers.accounts.auth import now_ms
from homeserver.handlers.accounts.login import LoginHandler
from homeserver.handlers.accounts.passwords import PasswordHasher
from homeserver.handlers.accounts.uia import UserInteractiveAuth
from homeserver.handlers.accounts.user_ids import check_new_localpart
from homeserver.server import Server
from storage.stores.registration_tokens import RegistrationTokenStore
from storage.stores.users import UserStore

logger = logging.getLogger(__name__)

RegisteredHook = Callable[[str, bool], Awaitable[None]]

DUMMY = "m.login.dummy"
REGISTRATION_TOKEN = "m.login.registration_token"
MAX_PASSWORD_LENGTH = 512


def check_password_length(password: str | None) -> None:
    if password is not None and len(password) > MAX_PASSWORD_LENGTH:
        raise bad_json(f"password may not be longer than {MAX_PASSWORD_LENGTH} characters")


def user_in_use() -> MatrixError:
    return MatrixError(400, "M_USER_IN_USE", "User ID already taken.")


@attrs.frozen(kw_only=True)
class RegisterRequest:
    """What a client asked /register for, already type-checked by the API layer."""

    username: str | None = None
    password: str | None = None
    device_id: str | None = None
    initial_device_display_name: str | None = None
    inhibit_login: bool = False
    refresh_token: bool = False


class RegistrationHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.config = hs.config
        self.server_name: str = hs.server_name
        self.users = hs.get(UserStore)
        self.tokens = hs.get(RegistrationTokenStore)
        self.passwords = hs.get(PasswordHasher)
        self.login = hs.get(LoginHandler)
        self.uia = hs.get(UserInteractiveAuth)
        self.on_registered: list[RegisteredHook] = []

    async def check_username(self, username: str) -> str:
        """The user id a requested username maps to, if valid and free."""
        user_id = check_new_localpart(username.lower(), self.server_name)
        if await self.users.user_exists(user_id):
            raise user_in_use()
        return user_id

    async def register_user(self, localpart: str | None, password: str | None, *,
                            is_guest: bool = False, is_admin: bool = False, announce: bool = True) -> str:
        """Create the account and its profile; M_USER_IN_USE if the id is taken.

        ``announce=False`` skips the on_registered hooks (for accounts the server makes itself).
        """
        if localpart is None:
            user_id = await self._unused_user_id(numeric=is_guest)
        else:
            user_id = check_new_localpart(localpart.lower(), self.server_name)
        check_password_length(password)
        password_hash = await self.passwords.hash(password) if password is not None else None
        # New accounts start with their localpart as display name, as Synapse does.
        localpart_of_id = user_id[1:].split(":", 1)[0]
        if not await self.users.create_user(user_id, password_hash, now_ms(self.hs), is_admin, is_guest,
                                            displayname=localpart_of_id):
            raise user_in_use()
        if announce:
            for hook in list(self.on_registered):
                try:
                    await hook(user_id, is_guest)
                except Exception:
                    logger.exception("registration hook %r failed for %s", hook, user_id)
        return user_id

    async def _unused_user_id(self, numeric: bool) -> str:
        for _ in range(20):
            if numeric:
                localpart = str(secrets.randbelow(10**12))
            else:
                localpart = "u" + secrets.token_hex(6)
            user_id = f"@{localpart}:{self.server_name}"
            if not await self.users.user_exists(user_id):
                return user_id
        raise MatrixError(500, "M_UNKNOWN", "Could not allocate a user ID")

    def flows(self) -> list[list[str]]:
        if self.config.registration_requires_token:
            return [[REGISTRATION_TOKEN]]
        return [[DUMMY]]

    async def register_client(self, body: dict[str, Any], request: RegisterRequest) -> dict[str, Any]:
        """POST /register for kind=user: username check, UIA, account, and (usually) a login."""
        if not self.config.enable_registration:
            raise forbidden("Registration has been disabled")
        if request.username is not None:
            await self.check_username(request.username)
        check_password_length(request.password)  # before a registration token is spent
        results = await self.uia.check(body, "register", self.flows(), {
            DUMMY: self._dummy_stage,
            REGISTRATION_TOKEN: self._token_stage,
        })
        token = results.get(REGISTRATION_TOKEN)
        if token is not None and not await self.tokens.use_token(token, now_ms(self.hs)):
            raise MatrixError(401, "M_UNAUTHORIZED", "Registration token is no longer valid")
        user_id = await self.register_user(request.username, request.password)
        return await self._login_after_registration(user_id, request)

    async def register_guest(self, request: RegisterRequest) -> dict[str, Any]:
        if not self.config.allow_guest_access:
            raise forbidden("Guest access is disabled")
        user_id = await self.register_user(None, None, is_guest=True)
        return await self._login_after_registration(user_id, request)

    async def _login_after_registration(self, user_id: str, request: RegisterRequest) -> dict[str, Any]:
        if request.inhibit_login:
            return {"user_id": user_id, "home_server": self.server_name}
        login = await self.login.create_login(user_id, request.device_id, request.initial_device_display_name,
                                              want_refresh=request.refresh_token)
        return login.to_json(self.server_name)

    async def _dummy_stage(self, auth: dict[str, Any]) -> bool:
        return True

    async def _token_stage(self, auth: dict[str, Any]) -> str:
        token = auth.get("token")
        if not isinstance(token, str) or not await self.is_token_valid(token):
            raise MatrixError(401, "M_UNAUTHORIZED", "Invalid registration token")
        return token

    async def is_token_valid(self, token: str) -> bool:
        record = await self.tokens.get_token(token)
        return record is not None and record.is_usable(now_ms(self.hs))
