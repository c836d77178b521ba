"""OpenID tokens: a client asks for one to prove to a third party (a widget, Element Call's
focus, an integration manager) who its user is; the third party asks us back over
``/_matrix/federation/v1/openid/userinfo``. The token proves identity only; it grants no access
to the client API. Tokens are random, stored as their SHA-256, and expire after an hour (as
Synapse's do)."""

from __future__ import annotations

from typing import Any

from homeserver.errors import forbidden, unknown_token
from homeserver.handlers.accounts.auth import Requester, generate_token, hash_token, now_ms
from homeserver.server import Server
from storage.stores.openid_tokens import OpenIdTokenStore

TOKEN_LIFETIME_MS = 60 * 60 * 1000


class OpenIdHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.store = hs.get(OpenIdTokenStore)

    async def request_token(self, requester: Requester, user_id: str) -> dict[str, Any]:
        """A new token for the requester's own account, in the spec's ``OpenIdCredentials`` shape."""
        if user_id != requester.user_id:
            raise forbidden("Cannot request an OpenID token for another user")
        token = generate_token("oid")
        now = now_ms(self.hs)
        await self.store.add_token(hash_token(token), user_id, now + TOKEN_LIFETIME_MS, now)
        return {"access_token": token, "token_type": "Bearer", "matrix_server_name": self.hs.server_name,
                "expires_in": TOKEN_LIFETIME_MS // 1000}

    async def userinfo(self, token: str) -> dict[str, str]:
        """Whose the token is (``{"sub": user_id}``), or M_UNKNOWN_TOKEN when unknown or expired."""
        user_id = await self.store.get_user_for_token(hash_token(token), now_ms(self.hs))
        if user_id is None:
            raise unknown_token("Access token unknown or expired")
        return {"sub": user_id}
