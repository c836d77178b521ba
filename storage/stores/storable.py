"""Which client-supplied strings can exist in the database at all."""

from __future__ import annotations


def storable(*values: str | None) -> bool:
    """False if a value could never have been stored: PostgreSQL text cannot hold NUL.

    Lookups by client-supplied keys use this to answer "not found" instead of failing.
    """
    return not any(value is not None and "\x00" in value for value in values)
