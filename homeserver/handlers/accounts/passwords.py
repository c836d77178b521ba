"""Password hashing with bcrypt, always off the reactor thread (a hash takes ~0.3 s)."""

from __future__ import annotations

import base64
import hashlib
import secrets

import bcrypt
from twisted.internet.threads import deferToThread

from homeserver.server import Server

BCRYPT_MAX_BYTES = 72


def _bcrypt_input(password: str) -> bytes:
    """bcrypt reads at most 72 bytes; longer passwords are pre-hashed so every byte counts."""
    raw = password.encode("utf-8")
    if len(raw) <= BCRYPT_MAX_BYTES:
        return raw
    return base64.b64encode(hashlib.sha256(raw).digest())


def _hash(password: str, rounds: int) -> str:
    return bcrypt.hashpw(_bcrypt_input(password), bcrypt.gensalt(rounds)).decode("ascii")


def _verify(password: str, stored_hash: str) -> bool:
    try:
        return bcrypt.checkpw(_bcrypt_input(password), stored_hash.encode("ascii"))
    except ValueError:
        return False  # a corrupt or foreign hash never matches


class PasswordHasher:
    def __init__(self, hs: Server) -> None:
        self.rounds = hs.config.bcrypt_rounds
        self._decoy_hash: str | None = None

    async def hash(self, password: str) -> str:
        return await deferToThread(_hash, password, self.rounds)

    async def verify(self, password: str, stored_hash: str | None) -> bool:
        """Check a password; with no stored hash, spend the same time and say no.

        Answering "no such user" instantly would let anyone tell which accounts
        exist by timing /login, so a missing hash is checked against a decoy.
        """
        if not stored_hash:
            await deferToThread(_verify, password, await self._decoy())
            return False
        return await deferToThread(_verify, password, stored_hash)

    async def _decoy(self) -> str:
        if self._decoy_hash is None:
            self._decoy_hash = await self.hash(secrets.token_urlsafe(16))
        return self._decoy_hash
