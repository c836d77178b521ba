"""Shape checks and signature checks for the JSON objects E2EE clients upload.

Each check raises a Matrix error naming what is wrong, so malformed keys are a
400 with a reason and never reach storage (or a 500).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import nacl.exceptions
import nacl.signing

from homeserver.errors import MatrixError, bad_json, invalid_param
from homeserver.events.identifiers import is_valid_user_id
from homeserver.events.signing import SignatureError, verify_json_signature
from homeserver.events.unpadded_base64 import decode_base64

MAX_ID_LENGTH = 255
ED25519 = "ed25519"


def invalid_signature(message: str) -> MatrixError:
    return MatrixError(400, "M_INVALID_SIGNATURE", message)


def require_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_json(f"{what} must be an object")
    return value


def require_string(value: Any, what: str, max_length: int = MAX_ID_LENGTH) -> str:
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise bad_json(f"{what} must be a non-empty string of at most {max_length} characters")
    return value


def require_user_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not is_valid_user_id(value):
        raise invalid_param(f"{what} is not a valid user ID")
    return value


def split_key_id(key_id: Any, what: str) -> tuple[str, str]:
    """'<algorithm>:<id>' -> (algorithm, id)."""
    if not isinstance(key_id, str) or len(key_id) > MAX_ID_LENGTH:
        raise bad_json(f"{what}: key ids must be strings like 'algorithm:id'")
    algorithm, sep, ident = key_id.partition(":")
    if not sep or not algorithm or not ident:
        raise bad_json(f"{what}: key id {key_id!r} is not of the form 'algorithm:id'")
    return algorithm, ident


def verify_key_from_base64(public_key: str) -> nacl.signing.VerifyKey | None:
    """An ed25519 public key, or None when the text is not one."""
    try:
        raw = decode_base64(public_key)
        return nacl.signing.VerifyKey(raw) if len(raw) == 32 else None
    except (ValueError, TypeError, nacl.exceptions.CryptoError):
        return None


def check_signature_shapes(obj: Mapping[str, Any], what: str) -> dict[str, dict[str, str]]:
    """``signatures`` is {user_id: {key_id: base64 string}}."""
    signatures = obj.get("signatures")
    if not isinstance(signatures, dict):
        raise bad_json(f"{what}.signatures must be an object")
    for signer, by_key in signatures.items():
        if not isinstance(by_key, dict):
            raise bad_json(f"{what}.signatures[{signer}] must be an object")
        for key_id, signature in by_key.items():
            split_key_id(key_id, f"{what}.signatures")
            if not isinstance(signature, str):
                raise bad_json(f"{what}.signatures must hold base64 strings")
    return signatures


def has_valid_signature(obj: Mapping[str, Any], signer: str, key_id: str, public_key: str) -> bool:
    """True when ``obj`` carries a good signature by signer's ``key_id`` (= ed25519 public_key)."""
    verify_key = verify_key_from_base64(public_key)
    signatures = obj.get("signatures")
    if verify_key is None or not isinstance(signatures, Mapping):
        return False
    by_signer = signatures.get(signer)
    if not isinstance(by_signer, Mapping) or key_id not in by_signer:
        return False
    try:
        verify_json_signature({"signatures": {signer: {key_id: by_signer[key_id]}}, **_unsigned_part(obj)},
                              signer, {key_id: verify_key})
    except SignatureError:
        return False
    return True


def _unsigned_part(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}


def signable_part(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What a signature covers: everything but ``signatures`` and ``unsigned``."""
    return _unsigned_part(obj)


def single_ed25519_key(obj: Mapping[str, Any], what: str) -> tuple[str, str]:
    """A cross-signing key's one ed25519 key as (key_id, public_key); its id must be the key."""
    keys = obj.get("keys")
    if not isinstance(keys, dict) or len(keys) != 1:
        raise bad_json(f"{what}.keys must hold exactly one key")
    ((key_id, public_key),) = keys.items()
    algorithm, ident = split_key_id(key_id, f"{what}.keys")
    if algorithm != ED25519 or not isinstance(public_key, str) or ident != public_key:
        raise bad_json(f"{what}.keys must be {{'ed25519:<public key>': '<public key>'}}")
    if verify_key_from_base64(public_key) is None:
        raise bad_json(f"{what} does not hold a valid ed25519 public key")
    return key_id, public_key
