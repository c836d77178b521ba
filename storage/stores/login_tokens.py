"""One-use login tokens (``login_tokens``), keyed by the token's SHA-256: `consume_token` signs in once."""

from __future__ import annotations

from storage.stores.hashed_tokens import HashedTokenStore


class LoginTokenStore(HashedTokenStore):
    TABLE = "login_tokens"
    KIND = "login"
