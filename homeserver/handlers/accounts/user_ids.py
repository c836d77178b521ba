"""User ID grammar (spec appendix "User Identifiers") for local accounts."""

from __future__ import annotations

import re

from homeserver.errors import MatrixError

# The spec's allowed localpart characters for new accounts.
LOCALPART_PATTERN = re.compile(r"^[a-z0-9._=\-/+]+$")
MAX_USER_ID_LENGTH = 255


def invalid_username(message: str) -> MatrixError:
    return MatrixError(400, "M_INVALID_USERNAME", message)


def split_user_id(user_id: str) -> tuple[str, str] | None:
    """(localpart, server_name) of ``@localpart:server``, or None when it is not that shape."""
    if not isinstance(user_id, str) or not user_id.startswith("@") or ":" not in user_id:
        return None
    localpart, _, server = user_id[1:].partition(":")
    if not server:
        return None
    return localpart, server


def check_new_localpart(localpart: str, server_name: str) -> str:
    """The user ID for a new account's requested localpart, or M_INVALID_USERNAME.

    Requested names are lower-cased first, as Synapse does, so "Alice" becomes @alice.
    """
    if not localpart:
        raise invalid_username("User ID cannot be empty")
    if not LOCALPART_PATTERN.match(localpart):
        raise invalid_username("User ID can only contain characters a-z, 0-9, or '=_-./+'")
    if localpart.startswith("_"):
        raise invalid_username("User ID may not begin with '_'")
    if localpart.isdigit():
        raise invalid_username("Numeric user IDs are reserved for guest users")
    user_id = f"@{localpart}:{server_name}"
    if len(user_id) > MAX_USER_ID_LENGTH:
        raise invalid_username(f"User ID may not be longer than {MAX_USER_ID_LENGTH} characters")
    return user_id
