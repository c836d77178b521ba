"""Who is making this request: what an access token means, for every client API.

The HTTP layer finds the token (homeserver/http/auth.py ``get_user_by_req``) and
asks ``Auth.authenticate_token`` who it belongs to: a ``Requester``, or
M_UNKNOWN_TOKEN (401). Only a token's SHA-256 is stored or compared.
"""

from __future__ import annotations

import hashlib
import logging
import secrets

import attrs
from twisted.internet.defer import Deferred

from homeserver.errors import MatrixError, unknown_token
from homeserver.server import Server
from storage.stores.access_tokens import AccessTokenInfo, AccessTokenStore
from storage.stores.devices import DeviceStore
from storage.stores.user_restrictions import UserRestrictionsStore

logger = logging.getLogger(__name__)

# Writing "last seen" on every request would turn reads into writes; once per
# device per interval is enough for GET /devices.
LAST_SEEN_INTERVAL_MS = 5 * 60 * 1000


@attrs.frozen
class Requester:
    user_id: str
    device_id: str | None
    is_guest: bool
    is_admin: bool
    access_token_id: int | None
    #: An admin shadow-banned the account: its sends and invites seem to work but reach nobody.
    shadow_banned: bool = False


def generate_token(prefix: str) -> str:
    """A high-entropy opaque token (256 random bits), with a prefix naming its kind."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def now_ms(hs: Server) -> int:
    return int(hs.reactor.seconds() * 1000)


class Auth:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.tokens = hs.get(AccessTokenStore)
        self.devices = hs.get(DeviceStore)
        self.restrictions = hs.get(UserRestrictionsStore)
        self._last_seen_written: dict[tuple[str, str], int] = {}

    async def authenticate_token(self, token: str, *, allow_guest: bool = False,
                                 allow_expired: bool = False, client_ip: str | None = None) -> Requester:
        """Who holds this token; guests are refused (M_GUEST_ACCESS_FORBIDDEN) unless allowed."""
        requester = await self.get_user_by_access_token(token, allow_expired=allow_expired)
        if requester.is_guest and not allow_guest:
            raise MatrixError(403, "M_GUEST_ACCESS_FORBIDDEN", "Guest access not allowed")
        if requester.device_id is not None:
            self._note_last_seen(requester.user_id, requester.device_id, client_ip)
        return requester

    async def get_user_by_access_token(self, token: str, allow_expired: bool = False) -> Requester:
        """Authenticate a bare token (e.g. one sent over a WebSocket)."""
        info = await self.tokens.get_access_token(hash_token(token))
        if info is None or info.deactivated:
            raise unknown_token()
        if not allow_expired and info.valid_until_ms is not None and info.valid_until_ms <= now_ms(self.hs):
            raise unknown_token("Access token has expired", soft_logout=True)
        # A locked account may only do what an expired token may: log out (handlers/accounts/restrictions.py).
        if not allow_expired and await self.restrictions.is_locked(info.user_id):
            raise MatrixError(401, "M_USER_LOCKED", "This account has been locked", soft_logout=True)
        return requester_for(info)

    def _note_last_seen(self, user_id: str, device_id: str, ip: str | None) -> None:
        seen = now_ms(self.hs)
        key = (user_id, device_id)
        if seen - self._last_seen_written.get(key, 0) < LAST_SEEN_INTERVAL_MS:
            return
        if len(self._last_seen_written) > 100_000:
            self._last_seen_written.clear()
        self._last_seen_written[key] = seen
        write = Deferred.fromCoroutine(self.devices.record_last_seen(user_id, device_id, seen, ip))
        write.addErrback(lambda failure: logger.warning("recording last seen failed: %s", failure.value))


def requester_for(info: AccessTokenInfo) -> Requester:
    return Requester(info.user_id, info.device_id, info.is_guest, info.is_admin, info.token_id,
                     info.shadow_banned)

