"""Unpadded Base64 (standard and URL-safe alphabets), as the Matrix appendices define it."""

from __future__ import annotations

import base64
import binascii


def encode_base64(data: bytes, urlsafe: bool = False) -> str:
    """Encode without `=` padding."""
    encoded = base64.urlsafe_b64encode(data) if urlsafe else base64.b64encode(data)
    return encoded.rstrip(b"=").decode("ascii")


def decode_base64(text: str, urlsafe: bool = False) -> bytes:
    """Decode with or without padding (the spec asks decoders to accept both).

    Raises ValueError on characters outside the chosen alphabet or an impossible length.
    """
    stripped = text.rstrip("=")
    if len(stripped) % 4 == 1:
        raise ValueError("invalid base64 length")
    padded = stripped + "=" * (-len(stripped) % 4)
    try:
        if urlsafe:
            if "+" in padded or "/" in padded:
                raise ValueError("standard base64 characters in URL-safe input")
            return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise ValueError(f"invalid base64: {e}") from e
