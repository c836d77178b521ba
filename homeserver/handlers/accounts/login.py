"""Logging in: checking passwords, and issuing devices and tokens (also used by registration)."""

from __future__ import annotations

from typing import Any

import attrs

from homeserver.errors import MatrixError, bad_json, forbidden, unknown_token
from homeserver.handlers.accounts.auth import generate_token, hash_token, now_ms
from homeserver.handlers.accounts.devices import DeviceHandler, generate_device_id
from homeserver.handlers.accounts.passwords import PasswordHasher
from homeserver.handlers.accounts.user_ids import split_user_id
from homeserver.handlers.ratelimit import RateLimiters
from homeserver.server import Server
from storage.stores.access_tokens import AccessTokenStore
from storage.stores.users import UserStore

# Access tokens that come with a refresh token expire after this long (Synapse's default).
REFRESHABLE_TOKEN_LIFETIME_MS = 5 * 60 * 1000


@attrs.frozen
class LoginResult:
    user_id: str
    device_id: str
    access_token: str
    refresh_token: str | None = None
    expires_in_ms: int | None = None

    def to_json(self, server_name: str) -> dict[str, Any]:
        body: dict[str, Any] = {"user_id": self.user_id, "device_id": self.device_id,
                                "access_token": self.access_token, "home_server": server_name}
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
            body["expires_in_ms"] = self.expires_in_ms
        return body


def user_deactivated() -> MatrixError:
    return MatrixError(403, "M_USER_DEACTIVATED", "This account has been deactivated")


class LoginHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.server_name: str = hs.server_name
        self.users = hs.get(UserStore)
        self.tokens = hs.get(AccessTokenStore)
        self.devices = hs.get(DeviceHandler)
        self.passwords = hs.get(PasswordHasher)

    def user_id_from_identifier(self, body: dict[str, Any]) -> str:
        """The user a login (or UIA password stage) names: ``identifier`` or legacy ``user``."""
        identifier = body.get("identifier")
        if identifier is None:
            user = body.get("user")
            if user is None:
                if "medium" in body or "address" in body:
                    raise forbidden("Third-party identifiers are not supported")
                raise MatrixError(400, "M_MISSING_PARAM", "Missing identifier")
            identifier = {"type": "m.id.user", "user": user}
        if not isinstance(identifier, dict):
            raise bad_json("identifier must be an object")
        kind = identifier.get("type")
        if kind in ("m.id.thirdparty", "m.id.phone"):
            raise forbidden("Third-party identifiers are not supported")
        if kind != "m.id.user":
            raise MatrixError(400, "M_UNKNOWN", "Unknown identifier type")
        user = identifier.get("user")
        if not isinstance(user, str) or not user:
            raise bad_json("identifier.user must be a non-empty string")
        if user.startswith("@"):
            parts = split_user_id(user)
            if parts is None:
                raise MatrixError(400, "M_INVALID_PARAM", "Invalid user ID")
            localpart, server = parts
            if server != self.server_name:
                raise forbidden("User is not local to this server")
        else:
            localpart = user
        return f"@{localpart.lower()}:{self.server_name}"

    async def check_password(self, user_id: str, password: Any) -> str:
        """The user id if the password is right; M_FORBIDDEN otherwise, M_USER_DEACTIVATED after."""
        if not isinstance(password, str):
            raise bad_json("password must be a string")
        user = await self.users.get_user(user_id)
        if user is None or not await self.passwords.verify(password, user.password_hash):
            raise forbidden("Invalid username or password")
        if user.deactivated:
            raise user_deactivated()
        return user.user_id

    async def create_login(self, user_id: str, device_id: str | None, display_name: str | None,
                           want_refresh: bool = False) -> LoginResult:
        """A device (new, or reused with its old tokens revoked per spec) and fresh tokens for it."""
        if device_id is None:
            device_id = generate_device_id()
        created = await self.devices.ensure_device(user_id, device_id, display_name)
        if not created:
            await self.tokens.delete_device_tokens(user_id, [device_id])
        return await self.issue_tokens(user_id, device_id, want_refresh)

    async def issue_tokens(self, user_id: str, device_id: str, want_refresh: bool) -> LoginResult:
        now = now_ms(self.hs)
        access_token = generate_token("vat")
        if not want_refresh:
            await self.tokens.add_access_token(hash_token(access_token), user_id, device_id, now)
            return LoginResult(user_id, device_id, access_token)
        refresh_token = generate_token("vrt")
        refresh_id = await self.tokens.add_refresh_token(hash_token(refresh_token), user_id, device_id, now)
        await self.tokens.add_access_token(hash_token(access_token), user_id, device_id, now,
                                           now + REFRESHABLE_TOKEN_LIFETIME_MS, refresh_id)
        return LoginResult(user_id, device_id, access_token, refresh_token, REFRESHABLE_TOKEN_LIFETIME_MS)

    async def refresh(self, refresh_token: str) -> LoginResult:
        """Swap a refresh token for a new access token and refresh token (the old one is spent)."""
        info = await self.tokens.get_refresh_token(hash_token(refresh_token))
        if info is None or not await self.tokens.consume_refresh_token(info.token_id):
            raise unknown_token("Unknown refresh token")
        user = await self.users.get_user(info.user_id)
        if user is None or user.deactivated:
            raise unknown_token("Unknown refresh token")
        return await self.issue_tokens(info.user_id, info.device_id, want_refresh=True)

    async def logout(self, user_id: str, device_id: str | None, token_id: int | None) -> None:
        """Log out one session: its device goes (with its tokens), or just the token if device-less."""
        if device_id is not None:
            await self.devices.delete_devices(user_id, [device_id])
        elif token_id is not None:
            await self.tokens.delete_access_token(user_id, token_id)

    async def logout_all(self, user_id: str) -> None:
        await self.devices.delete_all_devices(user_id)
        await self.tokens.delete_user_tokens(user_id)


class PasswordLogin:
    """POST /login with m.login.password, behind the rc_login limits."""

    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.login = hs.get(LoginHandler)
        self.limits = hs.get(RateLimiters)

    async def login_with_password(self, body: dict[str, Any], client_ip: str, device_id: str | None,
                                  display_name: str | None, want_refresh: bool) -> LoginResult:
        self.limits.login_address.ratelimit(client_ip)
        user_id = self.login.user_id_from_identifier(body)
        self.limits.login_account.ratelimit(user_id, update=False)
        self.limits.login_failed_attempts.ratelimit(user_id, update=False)
        try:
            await self.login.check_password(user_id, body.get("password"))
        except MatrixError as error:
            if error.errcode == "M_FORBIDDEN":
                self.limits.login_failed_attempts.record_action(user_id)
            raise
        # rc_login.account counts successful logins into one account; failures have their own limit.
        self.limits.login_account.ratelimit(user_id)
        return await self.login.create_login(user_id, device_id, display_name, want_refresh)
