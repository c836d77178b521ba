"""Operator tools: shared-secret registration (Synapse-compatible) and registration tokens.

Shared-secret registration lets ``register_new_matrix_user`` create accounts even
when open registration is off: the client fetches a single-use nonce, then sends
HMAC-SHA1(secret, nonce NUL username NUL password NUL admin|notadmin[NUL user_type]).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from typing import Any

from homeserver.errors import MatrixError, forbidden, invalid_param, not_found
from homeserver.handlers.accounts.auth import now_ms
from homeserver.handlers.accounts.login import LoginHandler
from homeserver.handlers.accounts.registration import RegistrationHandler, check_password_length
from homeserver.handlers.validation import check_storable_text
from homeserver.server import Server
from storage.stores.profiles import ProfileStore
from storage.stores.registration_tokens import RegistrationToken, RegistrationTokenStore
from storage.stores.users import UserStore

NONCE_LIFETIME_MS = 60_000
MAX_NONCES = 10_000
TOKEN_ALPHABET = string.ascii_letters + string.digits + "._~-"
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9._~-]{1,64}$")


def shared_secret_mac(secret: str, nonce: str, username: str, password: str, admin: bool,
                      user_type: str | None = None) -> str:
    """The hex HMAC-SHA1 Synapse's register_new_matrix_user computes."""
    mac = hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha1)
    mac.update(nonce.encode("utf-8"))
    for part in (username, password, "admin" if admin else "notadmin"):
        mac.update(b"\x00")
        mac.update(part.encode("utf-8"))
    if user_type:
        mac.update(b"\x00")
        mac.update(user_type.encode("utf-8"))
    return mac.hexdigest()


class SharedSecretRegistration:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.secret: str | None = hs.config.registration_shared_secret
        self.registration = hs.get(RegistrationHandler)
        self.users = hs.get(UserStore)
        self.profiles = hs.get(ProfileStore)
        self.login = hs.get(LoginHandler)
        self._nonces: dict[str, int] = {}  # nonce -> issued at (ms), in issue order

    def _require_enabled(self) -> str:
        if not self.secret:
            raise MatrixError(400, "M_UNKNOWN", "Shared secret registration is not enabled")
        return self.secret

    def new_nonce(self) -> str:
        self._require_enabled()
        now = now_ms(self.hs)
        self._expire(now)
        if len(self._nonces) >= MAX_NONCES:
            del self._nonces[next(iter(self._nonces))]
        nonce = secrets.token_hex(32)
        self._nonces[nonce] = now
        return nonce

    def _expire(self, now: int) -> None:
        while self._nonces:
            nonce, issued = next(iter(self._nonces.items()))
            if now - issued <= NONCE_LIFETIME_MS:
                return
            del self._nonces[nonce]

    async def register(self, nonce: str, username: str, password: str, admin: bool, mac: str,
                       displayname: str | None, user_type: str | None) -> dict[str, Any]:
        secret = self._require_enabled()
        self._expire(now_ms(self.hs))
        if self._nonces.pop(nonce, None) is None:  # single use, even when the MAC is wrong
            raise MatrixError(400, "M_UNKNOWN", "Unrecognised nonce")
        for name, value in (("username", username), ("password", password), ("user_type", user_type),
                            ("displayname", displayname)):
            check_storable_text(name, value)
        check_password_length(password)
        expected = shared_secret_mac(secret, nonce, username, password, admin, user_type)
        if not hmac.compare_digest(expected.encode("ascii"), mac.lower().encode("utf-8")):
            raise forbidden("HMAC incorrect")
        user_id = await self.registration.register_user(username, password, is_admin=admin)
        if displayname:
            await self.profiles.set_field(user_id, "displayname", displayname)
        login = await self.login.create_login(user_id, None, None)
        return login.to_json(self.hs.server_name)


class RegistrationTokenAdmin:
    """The admin API for registration tokens (Synapse's /_synapse/admin/v1/registration_tokens)."""

    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.store = hs.get(RegistrationTokenStore)

    async def create(self, token: str | None, uses_allowed: int | None, expiry_ms: int | None,
                     length: int) -> RegistrationToken:
        if token is not None and not TOKEN_PATTERN.match(token):
            raise invalid_param("token must be 1-64 characters from A-Z, a-z, 0-9, '.', '_', '~', '-'")
        if uses_allowed is not None and uses_allowed < 0:
            raise invalid_param("uses_allowed must be a non-negative integer or null")
        now = now_ms(self.hs)
        if expiry_ms is not None and expiry_ms <= now:
            raise invalid_param("expiry_time must not be in the past")
        if not 1 <= length <= 64:
            raise invalid_param("length must be an integer from 1 to 64")
        for _ in range(5 if token is None else 1):
            chosen = token or "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(length))
            if await self.store.create_token(chosen, uses_allowed, expiry_ms, now):
                return RegistrationToken(chosen, uses_allowed, 0, expiry_ms)
        raise invalid_param(f"Token already exists: {token}" if token else "Could not pick a free token")

    async def get(self, token: str) -> RegistrationToken:
        record = await self.store.get_token(token)
        if record is None:
            raise not_found(f"No such registration token: {token}")
        return record

    async def list(self, valid: bool | None = None) -> list[RegistrationToken]:
        """Every token, or only the usable (``valid``) or spent and expired ones."""
        tokens = await self.store.list_tokens()
        if valid is None:
            return tokens
        now = now_ms(self.hs)
        return [t for t in tokens if self._usable(t, now) == valid]

    @staticmethod
    def _usable(token: RegistrationToken, now: int) -> bool:
        return ((token.uses_allowed is None or token.completed < token.uses_allowed)
                and (token.expiry_ms is None or token.expiry_ms > now))

    async def update(self, token: str, changes: dict[str, int | None]) -> RegistrationToken:
        """``PUT .../registration_tokens/{token}``: uses_allowed and expiry_time (null: unlimited)."""
        if (changes.get("uses_allowed") or 0) < 0:
            raise invalid_param("uses_allowed must be a non-negative integer or null")
        expiry = changes.get("expiry_time")
        if expiry is not None and expiry <= now_ms(self.hs):
            raise invalid_param("expiry_time must not be in the past")
        record = await self.store.update_token(token, changes)
        if record is None:
            raise not_found(f"No such registration token: {token}")
        return record

    async def delete(self, token: str) -> None:
        if not await self.store.delete_token(token):
            raise not_found(f"No such registration token: {token}")
