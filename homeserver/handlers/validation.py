"""Checks on client-supplied text before it is stored."""

from __future__ import annotations

from homeserver.errors import MatrixError, bad_json


def check_storable_text(name: str, value: str | None, errcode_error: MatrixError | None = None) -> None:
    """Refuse NUL characters: PostgreSQL text cannot hold them, and no Matrix field needs them."""
    if value is not None and "\x00" in value:
        raise errcode_error or bad_json(f"{name} may not contain NUL characters")
