"""OpenID tokens (``openid_tokens``), keyed by the token's SHA-256: `get_user_for_token` until they expire."""

from __future__ import annotations

from storage.stores.hashed_tokens import HashedTokenStore


class OpenIdTokenStore(HashedTokenStore):
    TABLE = "openid_tokens"
    KIND = "openid"
