"""Signing in a new device from one already signed in (MSC3882, spec v1.7 ``/login/get_token``).

A signed-in device asks for a short-lived, one-use token (after confirming the account's password
when ``require_ui_auth`` is set) and hands it to the new device, for instance through a QR code; the
new device spends it at ``POST /login`` with ``m.login.token``. Off unless
``login_via_existing_session.enabled``. Only the token's SHA-256 is stored; spending it deletes it.
"""

from __future__ import annotations

from typing import Any

from homeserver.config.ratelimits import RateLimit
from homeserver.errors import MatrixError, bad_json, forbidden
from homeserver.handlers.accounts.auth import Requester, generate_token, hash_token, now_ms
from homeserver.handlers.accounts.login import LoginHandler, LoginResult, user_deactivated
from homeserver.handlers.accounts.uia import PasswordUia
from homeserver.handlers.ratelimit import Ratelimiter, RateLimiters
from homeserver.server import Server
from storage.stores.login_tokens import LoginTokenStore
from storage.stores.users import UserStore

TOKEN_LOGIN = "m.login.token"
# The spec asks for stricter than normal limits here, "such as maximum of 1 request per minute";
# Synapse counts one token a minute per user, whatever rc_* says. So do we.
MINT_LIMIT = RateLimit(per_second=1 / 60, burst_count=1)


def unrecognized() -> MatrixError:
    """What a server without the feature answers (Synapse registers no route then)."""
    return MatrixError(404, "M_UNRECOGNIZED", "Unrecognized request")


class LoginTokenHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.settings = hs.config.login_via_existing_session
        self.store = hs.get(LoginTokenStore)
        self.users = hs.get(UserStore)
        self.login = hs.get(LoginHandler)
        self.limits = hs.get(RateLimiters)
        self.mint_limit = Ratelimiter(lambda: float(hs.reactor.seconds()), MINT_LIMIT)

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    async def get_token(self, requester: Requester, body: dict[str, Any]) -> dict[str, Any]:
        """A new login token for the requester's account: ``{login_token, expires_in_ms}``."""
        if not self.enabled:
            raise unrecognized()
        if requester.is_guest:
            raise forbidden("Guests cannot sign in other devices")
        if self.settings.require_ui_auth:
            await self.hs.get(PasswordUia).require_password(body, requester.user_id, "login_get_token")
        self.mint_limit.ratelimit(requester.user_id)
        token = generate_token("vlt")
        now = now_ms(self.hs)
        lifetime = int(self.settings.token_timeout)
        await self.store.add_token(hash_token(token), requester.user_id, now + lifetime, now)
        return {"login_token": token, "expires_in_ms": lifetime}

    async def login_with_token(self, token: Any, client_ip: str, device_id: str | None,
                               display_name: str | None, want_refresh: bool) -> LoginResult:
        """POST /login with ``m.login.token``: the token's user, on a new (or named) device."""
        if not self.enabled:
            raise MatrixError(400, "M_UNKNOWN", "Unknown login type")
        self.limits.login_address.ratelimit(client_ip)
        if not isinstance(token, str) or not token:
            raise bad_json("token must be a non-empty string")
        user_id = await self.store.consume_token(hash_token(token), now_ms(self.hs))
        if user_id is None:
            raise forbidden("Invalid login token")
        user = await self.users.get_user(user_id)
        if user is None or user.deactivated:
            raise user_deactivated()
        self.limits.login_account.ratelimit(user_id)
        return await self.login.create_login(user_id, device_id, display_name, want_refresh)
