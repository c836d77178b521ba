"""What every part of the MLS delivery service shares: names, base64, identities, the room's suite."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from homeserver.errors import MatrixError, bad_json, invalid_param, too_large
from homeserver.mls import wire

MLS_ALGORITHM = "org.vignette.mls.v1"
KEY_PACKAGE_ALGORITHM = "org.vignette.mls.key_package"
MESSAGE_EVENT = "org.vignette.mls.message"
WELCOME_TO_DEVICE = "org.vignette.mls.welcome"
SYNC_SECTION = "org.vignette.mls"
EPOCH_CONFLICT = "ORG_VIGNETTE_MLS_EPOCH_CONFLICT"
SUPPORTED_SUITES = frozenset(wire.HASHES)


def identity_of(user_id: str, device_id: str) -> bytes:
    """The basic credential identity a device's KeyPackages must carry."""
    return f"{user_id}|{device_id}".encode()


def split_identity(identity: bytes) -> tuple[str, str] | None:
    try:
        text = identity.decode("utf-8")
    except UnicodeDecodeError:
        return None
    user_id, sep, device_id = text.rpartition("|")
    if not sep or not user_id.startswith("@") or not device_id:
        return None
    return user_id, device_id


def decode_b64(value: Any, what: str, max_size: int) -> bytes:
    """Unpadded (or padded) standard base64 of at most ``max_size`` bytes."""
    if not isinstance(value, str):
        raise bad_json(f"{what} must be a base64 string")
    if len(value) > (max_size * 4 + 2) // 3 + 2:
        raise too_large(f"{what} may be at most {max_size} bytes")
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise bad_json(f"{what} is not valid base64") from None


def encode_b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def epoch_conflict(current: int) -> MatrixError:
    return MatrixError(409, EPOCH_CONFLICT, f"The group is at epoch {current}; process its commits first",
                       current_epoch=current)


def bad_epoch(message: str, current: int) -> MatrixError:
    return MatrixError(400, "M_INVALID_PARAM", message, current_epoch=current)


def room_suite(encryption_content: dict[str, Any] | None) -> int | None:
    """The ciphersuite of an MLS room, or None if the room is not one."""
    if encryption_content is None or encryption_content.get("algorithm") != MLS_ALGORITHM:
        return None
    suite = encryption_content.get("cipher_suite", wire.SUITE_X25519_AES128GCM_SHA256_ED25519)
    return suite if isinstance(suite, int) and not isinstance(suite, bool) else -1


def parse_or_400(parse: Any, data: bytes, what: str) -> Any:
    try:
        return parse(data)
    except wire.WireError as exc:
        raise invalid_param(f"{what} is not a valid MLS message: {exc}") from None
