"""The server's ed25519 signing key, in Synapse's key file format.

One key per line: ``ed25519 <key id> <unpadded base64 seed>``.  Keeping
Synapse's format lets operators move a server's identity between the two.
"""

from __future__ import annotations

import base64
import os
import secrets
import string

import attrs
from nacl.signing import SigningKey


class SigningKeyError(Exception):
    """The key file is missing, unreadable or malformed."""


@attrs.frozen
class KeyFileEntry:
    """One line of the key file; the HomeServer pairs it with the server name."""

    key_id: str  # e.g. "ed25519:a_AbCd"
    key: SigningKey = attrs.field(repr=False)


def _b64_decode_unpadded(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _b64_encode_unpadded(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def generate_key_version() -> str:
    alphabet = string.ascii_letters + string.digits
    return "a_" + "".join(secrets.choice(alphabet) for _ in range(4))


def parse_signing_keys(text: str) -> list[KeyFileEntry]:
    keys = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 3 or parts[0] != "ed25519":
            raise SigningKeyError(f"line {number}: expected 'ed25519 <key id> <base64 seed>'")
        try:
            seed = _b64_decode_unpadded(parts[2])
        except ValueError as exc:
            raise SigningKeyError(f"line {number}: the seed is not base64") from exc
        if len(seed) != 32:
            raise SigningKeyError(f"line {number}: the seed must be 32 bytes, got {len(seed)}")
        keys.append(KeyFileEntry(key_id=f"ed25519:{parts[1]}", key=SigningKey(seed)))
    if not keys:
        raise SigningKeyError("no ed25519 key in the file")
    return keys


def read_signing_keys(path: str) -> list[KeyFileEntry]:
    try:
        with open(path, encoding="ascii") as handle:
            return parse_signing_keys(handle.read())
    except OSError as exc:
        raise SigningKeyError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise SigningKeyError(f"{path} is not a text key file") from exc


def write_new_signing_key(path: str) -> bool:
    """Create a key file unless one exists; never overwrite a server's identity.

    Returns True when a new key was written.
    """
    seed = SigningKey.generate().encode()
    line = f"ed25519 {generate_key_version()} {_b64_encode_unpadded(bytes(seed))}\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        handle.write(line)
    return True
