"""Password hashing with bcrypt, always off the reactor thread (a hash takes ~0.3 s)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import bcrypt
from twisted.internet.threads import deferToThread

DEFAULT_BCRYPT_ROUNDS = 12
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
    def __init__(self, hs: Any) -> None:
        # ``bcrypt_rounds`` (Synapse's key) is read if the config offers it.
        self.rounds = int(getattr(hs.config, "bcrypt_rounds", DEFAULT_BCRYPT_ROUNDS))

    async def hash(self, password: str) -> str:
        return await deferToThread(_hash, password, self.rounds)

    async def verify(self, password: str, stored_hash: str | None) -> bool:
        if not stored_hash:
            return False
        return await deferToThread(_verify, password, stored_hash)
